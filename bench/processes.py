"""The processes the benchmark starts on 127.0.0.1, and how it stops them all.

Every child is started from the main thread, in a session of its own (a Ctrl-C reaches the
benchmark only, which then stops its children in order), with ``PR_SET_PDEATHSIG`` on Linux so
that it gets SIGTERM even if the benchmark itself is killed.
"""

import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REGION = "us-west-2"
PR_SET_PDEATHSIG = 1
# The server of both sides of every comparison: waitress threads, and a PostgreSQL pool at least
# as large (the README's sizing: one connection per thread). 16 and 32 threads (pool as large)
# were tried on the 2-core machine of the results, answer path at 8 and 32 clients: neither side
# gained consistently (runs varied more than settings did), so both stay at 8.
WAITRESS_THREADS = 8
POOL_SIZE = 10
# The collections that hold steps: the answer path's, and the growth's (the worker's own
# collection is always one).
STEP_COLLECTIONS = "stepfunction/manual_steps stepfunction/manual_steps_growth"
try:  # loaded here: the child, between fork and exec, only calls it.
    _LIBC = ctypes.CDLL("libc.so.6", use_errno=True) if sys.platform == "linux" else None
except OSError:
    _LIBC = None


class StartError(RuntimeError):
    """A process did not come up; the message ends with the tail of its log."""


def _die_with_parent():
    """In the child: SIGTERM when the thread that started it (the main thread) ends."""
    _LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))


def child_env():
    """The benchmark's environment, with the repository importable (for ``bench.filler``)."""
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT)])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class Service:
    """One child process, its output in a log file."""

    def __init__(self, name, argv, log_dir, env=None):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**child_env(), **(env or {})},
            cwd=ROOT,
            start_new_session=True,
            preexec_fn=_die_with_parent if _LIBC is not None else None,
        )

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process.poll() is None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=15):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern, timeout):
        """Wait until a line of the log matches ``pattern``; returns the match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            match = regex.search(self.log_text())
            if match:
                return match
            if not self.alive():
                break
            time.sleep(0.05)
        raise StartError(f"{self.name}: no {pattern!r} in its log\n{self.log_tail()}")

    def rss_kib(self):
        """Resident memory (VmRSS, KiB) from /proc, or None once the process is gone."""
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def stop(self, grace=3.0):
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait(10)
        self._log.close()
        return self.process.returncode


class Processes(contextlib.ExitStack):
    """Everything started in a ``with`` block is stopped at its end, last started first."""

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = Path(log_dir)
        self.count = 0

    def start(self, name, argv, env=None):
        self.count += 1
        service = Service(f"{self.count:02d}-{name}", argv, self.log_dir, env)
        self.callback(service.stop)
        return service


# --- The local Step Functions -------------------------------------------------------------


class LocalStepFunctions:
    """bench/emulator.py in a process of its own, on a port that stays the same.

    moto keeps three threads for every execution that waits, until it ends; thousands of
    them time out at once and starve the emulator for minutes. ``fresh()`` forgets everything:
    moto's reset while few executions were left waiting, else a new process on the same port
    (Kinto's settings still point to it).
    """

    RESTART_ABOVE = 300  # executions left waiting since the last restart

    def __init__(self, processes, poll_seconds, name="emulator"):
        self.processes = processes
        self.poll_seconds = poll_seconds
        self.name = name
        self.port = 0
        self.bulk_port = None
        self.service = None
        self.left_waiting = 0
        self.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        argv = [sys.executable, ROOT / "bench" / "emulator.py", "--port", self.port]
        argv += ["--poll-seconds", self.poll_seconds]
        self.service = self.processes.start(self.name, argv)
        ready = self.service.wait_for_log(r"READY (\d+) (\d+)", 60)
        self.port, self.bulk_port = int(ready.group(1)), int(ready.group(2))
        return self

    def restart(self):
        self.stop()
        self.left_waiting = 0
        return self.start()

    def start_many(self, machine_arn, count, payload=None, chunk=200):
        """Start ``count`` executions of the machine, in the emulator's process (untimed
        preparation: StartExecution without a request each); their ARNs."""
        arns = []
        while len(arns) < count:
            body = {
                "stateMachineArn": machine_arn,
                "count": min(chunk, count - len(arns)),
                "input": json.dumps(payload or {}),
            }
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.bulk_port}/start",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    arns += json.loads(response.read())["executionArns"]
            except urllib.error.HTTPError as e:
                raise RuntimeError(f"starting executions: {e.read()[:300]!r}") from None
        return arns

    def fresh(self):
        if self.left_waiting > self.RESTART_ABOVE:
            return self.restart()
        reset_emulator(self.url)
        return self

    def stop(self):
        if self.service is not None:
            self.service.stop(grace=2)
            self.service = None


def reset_emulator(endpoint_url):
    """Forget every execution, activity, state machine and queue (moto's reset)."""
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).close()


# --- Kinto ----------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend_settings(backend, postgresql_url):
    if backend == "memory":
        return {
            "kinto.storage_backend": "kinto.core.storage.memory",
            "kinto.permission_backend": "kinto.core.permission.memory",
            "kinto.cache_backend": "kinto.core.cache.memory",
        }
    return {
        "kinto.storage_backend": "kinto.core.storage.postgresql",
        "kinto.storage_url": postgresql_url,
        "kinto.storage_pool_size": POOL_SIZE,
        "kinto.permission_backend": "kinto.core.permission.postgresql",
        "kinto.permission_url": postgresql_url,
        "kinto.cache_backend": "kinto.core.cache.postgresql",
        "kinto.cache_url": postgresql_url,
    }


LOGGING = """
[loggers]
keys = root, stepfunction, botocore

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_stepfunction]
level = INFO
handlers = console
qualname = stepfunction
propagate = 0

[logger_botocore]
level = WARNING
handlers = console
qualname = botocore
propagate = 0

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s] [%(threadName)s] %(message)s
"""


def write_ini(path, port, backend, postgresql_url, emulator_url, fill_secret, **extra):
    """A Kinto .ini: waitress (``WAITRESS_THREADS``), Basic auth, the plugin and history,
    ``extra``."""
    settings = {
        "kinto.includes": "stepfunction kinto.plugins.history bench.filler",
        "multiauth.policies": "basicauth",
        "kinto.userid_hmac_secret": "bench-secret",
        "kinto.bucket_create_principals": "system.Authenticated",
        **backend_settings(backend, postgresql_url),
        "stepfunction.collections": STEP_COLLECTIONS,
        "stepfunction.aws_endpoint_url": emulator_url,
        "stepfunction.aws_region": REGION,
        "stepfunction.aws_access_key": "testing",
        "stepfunction.aws_secret_key": "testing",
        "bench.fill_secret": fill_secret,
        **extra,
    }
    lines = ["[server:main]", "use = egg:waitress#main", "host = 127.0.0.1", f"port = {port}"]
    lines += [f"threads = {WAITRESS_THREADS}", "", "[app:main]", "use = egg:kinto"]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    Path(path).write_text("\n".join(lines) + "\n" + LOGGING)
    return Path(path)


def wait_http(url, service, timeout=60):
    """Wait until ``url`` answers 200 (the process must stay alive meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise StartError(f"{service.name}: {url} did not answer\n{service.log_tail()}")


def start_kinto(processes, name, ini_path):
    """``kinto start --ini`` (pserve + waitress); returns (service, base URL .../v1)."""
    port = int(re.search(r"^port = (\d+)$", Path(ini_path).read_text(), re.M).group(1))
    # KINTO_INI: where the hello view looks for the file it describes.
    argv = [BIN / "kinto", "start", "--ini", ini_path]
    service = processes.start(name, argv, {"KINTO_INI": str(ini_path)})
    url = f"http://127.0.0.1:{port}/v1"
    wait_http(url + "/", service)
    return service, url


def start_worker(processes, name, ini_path):
    """``stepfunction-worker CONFIG.ini``, once its pollers are started."""
    service = processes.start(name, [BIN / "stepfunction-worker", ini_path])
    service.wait_for_log(r"stepfunction worker started", 60)
    return service


def migrate(processes, ini_path):
    """``kinto migrate --ini``: the PostgreSQL schemas of storage, permissions and cache."""
    service = processes.start("migrate", [BIN / "kinto", "migrate", "--ini", ini_path])
    try:
        code = service.process.wait(120)
    except subprocess.TimeoutExpired:
        code = None
    if code != 0:
        raise StartError(f"kinto migrate failed ({code})\n{service.log_tail()}")


def reset_postgresql(url):
    """Drop everything in the benchmark's database (reserved for it); returns its version."""
    import sqlalchemy

    url = sqlalchemy.engine.make_url(url)
    if url.drivername == "postgresql":  # Kinto's driver, not SQLAlchemy 2.1's default
        url = url.set(drivername="postgresql+psycopg2")
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(sqlalchemy.text("CREATE SCHEMA public"))
            return connection.execute(sqlalchemy.text("SHOW server_version")).scalar()
    finally:
        engine.dispose()
