"""Finding 8: ``make serve`` started in the background stops within 5 s on SIGINT or SIGTERM.

A non-interactive shell starts a background command (``make serve &``) with SIGINT ignored,
and so it was in Kinto, which ``serve`` stopped with a SIGINT: nothing stopped. Each launch
here starts with SIGINT ignored, in a session of its own (as ``setsid``), on free ports.
``make`` passes SIGTERM on to its recipe but ignores a SIGINT that came ignored (a SIGINT to
make alone never reaches the recipe): SIGINT goes to the process group, as Ctrl-C or
``kill -INT %1`` under job control send it.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.testing.test_serve import ROOT, free_port, get, wait_for


STOP_SECONDS = 5


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def in_background():
    """Started as a non-interactive shell starts ``command &``: SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    "launcher, signum, to_group",
    [
        ("make", signal.SIGTERM, False),  # `kill $pid`, `kill %1`
        ("make", signal.SIGINT, True),  # Ctrl-C, `kill -INT %1` (job control)
        ("python", signal.SIGTERM, False),
        ("python", signal.SIGINT, False),
    ],
    ids=["make-SIGTERM", "make-SIGINT-to-group", "python-SIGTERM", "python-SIGINT"],
)
def test_make_serve_in_background_stops_on_signal(tmp_path, launcher, signum, to_group):
    ports = {name: free_port() for name in ("kinto", "emulator", "mail", "mailbox")}
    if launcher == "make":
        command = ["make", "--no-print-directory", "-o", "install", "serve"] + [
            f"PYTHON={sys.executable}",
            f"KINTO_PORT={ports['kinto']}",
            f"EMULATOR_PORT={ports['emulator']}",
            f"MAIL_PORT={ports['mail']}",
            f"MAILBOX_PORT={ports['mailbox']}",
        ]
    else:
        command = [sys.executable, "-m", "stepfunction.testing.serve", "--ini", "config.ini"]
        for name, option in (("kinto", ""), ("emulator", "emulator-"), ("mail", "mail-")):
            command += [f"--{option}port", str(ports[name])]
        command += ["--mailbox-port", str(ports["mailbox"])]
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=in_background,
            start_new_session=True,
        )
    try:
        heartbeat = f"http://127.0.0.1:{ports['kinto']}/v1/__heartbeat__"
        wait_for(lambda: get(heartbeat)[0] == 200, process, log_path, "heartbeat")
        assert all(listening(port) for port in ports.values())

        sent = time.monotonic()
        if to_group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"still running {STOP_SECONDS} s after {signum.name}:\n{log_path.read_text()}"
            )
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:  # failed: SIGTERM stops Kinto too, SIGKILL would not
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    log = log_path.read_text()
    assert took < STOP_SECONDS, log
    # Nothing left behind: Kinto (a session of its own) no longer listens, nor anything else.
    assert [name for name, port in ports.items() if listening(port)] == [], log
    assert "Traceback" not in log, log
