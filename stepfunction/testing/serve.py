"""``make serve``: the local Step Functions, then Kinto with the plugin; Ctrl-C stops both.

Kinto's in-process worker (``config.ini``) polls the local Step Functions' SQS queue as soon as
Kinto starts: started side by side, its first polls fail, a WARNING on every start. So the
local Step Functions runs here, in this process, and is up and preloaded before Kinto starts,
as a child process, pointed at its actual endpoint (``--emulator-port 0`` picks a free port).
Kinto also reads ``$KINTO_INI`` to describe its configuration, and logs an ERROR when that
file is missing: it is set to the ``--ini`` file.

Ctrl-C, SIGINT or SIGTERM stops Kinto as Ctrl-C would (SIGINT: its worker stops at exit), then
the Step Functions, within 5 s in all: Kinto still running ``GRACE_SECONDS`` after the signal
is killed. That holds in the background too, where a shell started this process with SIGINT
ignored: Kinto starts with both signals at their default, not with that inherited ignore.

The mails to reviewers go to a local mailbox (``stepfunction.testing.mailbox``): SMTP on
127.0.0.1:1025, its messages readable at http://127.0.0.1:8025/.

``python -m stepfunction.testing.serve [--ini config.ini] [--port 8888] [--emulator-port 5000]
[--mail-port 1025] [--mailbox-port 8025]``
"""

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from stepfunction.testing.emulator import Emulator, preload
from stepfunction.testing.mailbox import Mailbox, serve_page


log = logging.getLogger("stepfunction.testing.serve")

# Kinto warns that it serves plain HTTP: here it does, on purpose, on 127.0.0.1.
QUIET = "ignore:HTTPS is not enabled:UserWarning"

# Kinto's worker gets ``stepfunction.stop_seconds`` (1 in ``config.ini``) to stop polling;
# the local Step Functions and the mailbox stop in well under a second.
GRACE_SECONDS = 3.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class FailedAsDefined(logging.Filter):
    """The local Step Functions (moto) logs an ERROR of some 2 KB, the failing state's whole
    parse tree, each time an execution fails as its definition says: a rejected step, a
    timeout. That is the workflow's answer (DescribeExecution shows it), not a fault: such a
    record becomes one short DEBUG line, shown only when ``stepfunction.testing`` logs DEBUG."""

    def filter(self, record):
        args = record.args if isinstance(record.args, tuple) else ()
        if record.levelno < logging.ERROR or not args:
            return True
        if not str(args[0]).startswith("Exception=FailureEventException"):
            return True
        record.msg, record.args = "Execution failed as defined: %s", (str(args[0])[:300],)
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger("stepfunction.testing").isEnabledFor(logging.DEBUG)


def quiet_neighbours():
    """Only what a person needs in ``make serve``'s log: no request line of the local Step
    Functions (Kinto's worker polls it), no ERROR for an execution that failed as defined, no
    SMTP session chatter of the mailbox (aiosmtpd's ``mail.log`` at INFO)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # On the handlers: a logger's filters don't see its children's records (moto logs on
    # moto.stepfunctions.parser.asl.component.…).
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, FailedAsDefined) for f in handler.filters):
            handler.addFilter(FailedAsDefined())


def interrupt(signum, frame):
    """Until Kinto runs, SIGTERM stops this process as SIGINT (Ctrl-C) does."""
    raise KeyboardInterrupt


def wait(kinto: subprocess.Popen, stopping: list[float]) -> int:
    """Kinto's exit code once it exits; 0 once killed ``GRACE_SECONDS`` after a signal
    (``stopping`` holds the time of the first one): stopped, as asked."""
    while True:
        try:
            return kinto.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            if stopping and time.monotonic() - stopping[0] > GRACE_SECONDS:
                log.info("Kinto still running %g s after the signal: killed", GRACE_SECONDS)
                kinto.kill()
                kinto.wait()
                return 0


def kinto_command(ini: Path, port: int) -> list[str]:
    """``kinto start``, from this Python's environment (a virtualenv's ``bin``) if it is there."""
    kinto = shutil.which("kinto", path=Path(sys.executable).parent) or "kinto"
    return [kinto, "start", "--ini", str(ini), "--port", str(port)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stepfunction.testing.serve", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--ini", type=Path, default=Path("config.ini"), help="Kinto's .ini")
    parser.add_argument("--port", type=int, default=8888, help="Kinto's port")
    parser.add_argument("--emulator-port", type=int, default=5000, help="0 picks a free port")
    parser.add_argument("--mail-port", type=int, default=1025, help="the mailbox's SMTP port")
    parser.add_argument("--mailbox-port", type=int, default=8025, help="its page's port")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-5.5s [%(name)s] %(message)s"
    )
    # Also when SIGINT came ignored (started in the background): a handler of our own, unlike
    # an ignore, is reset to the default in Kinto's process when it starts.
    for signum in STOP_SIGNALS:
        signal.signal(signum, interrupt)
    try:
        return serve(args)
    except KeyboardInterrupt:
        log.info("Stopped")
        return 0


def serve(args: argparse.Namespace) -> int:
    ini = args.ini.resolve()
    quiet_neighbours()

    with Emulator(port=args.emulator_port) as emulator, Mailbox(port=args.mail_port) as mailbox:
        preloaded = preload(emulator.client())
        queue_url = preloaded["queue_url"]
        emulator.set_status_queues([preloaded["status_queue_url"]])
        page = serve_page(mailbox, args.mailbox_port)
        log.info("Preloaded the examples on %s; starting Kinto", emulator.endpoint_url)
        log.info(
            "Mails to reviewers: http://127.0.0.1:%d/ (SMTP on 127.0.0.1:%d)",
            page.server_port,
            mailbox.port,
        )
        env = {
            **os.environ,
            "KINTO_INI": str(ini),
            # Kinto's settings from the environment win over the .ini file's.
            "KINTO_STEPFUNCTION_AWS_ENDPOINT_URL": emulator.endpoint_url,
            "KINTO_STEPFUNCTION_QUEUES": queue_url,
            "KINTO_STEPFUNCTION_STATUS_QUEUES": preloaded["status_queue_url"],
            "KINTO_MAIL_PORT": str(mailbox.port),
            "KINTO_STEPFUNCTION_PUBLIC_URL": f"http://127.0.0.1:{args.port}/v1/",
            "PYTHONWARNINGS": ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), QUIET])),
        }
        # Its own session: a terminal's Ctrl-C reaches it once, from here, not twice.
        kinto = subprocess.Popen(kinto_command(ini, args.port), env=env, start_new_session=True)
        stopping = []  # when the first signal came
        try:

            def stop(signum, frame):
                if not stopping:
                    stopping.append(time.monotonic())
                    log.info(
                        "%s: stopping Kinto, then the local Step Functions",
                        signal.Signals(signum).name,
                    )
                    kinto.send_signal(signal.SIGINT)  # as Ctrl-C: its worker stops at exit

            for signum in STOP_SIGNALS:
                signal.signal(signum, stop)
            code = wait(kinto, stopping)
        finally:
            if kinto.poll() is None:  # this process failed: Kinto must not outlive it
                kinto.kill()
                kinto.wait()
    log.info("Stopped")
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    code = main()
    # Everything is stopped: skip the interpreter's teardown of moto's many objects, which
    # takes seconds on a loaded machine, out of the 5 s a stop may take.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
