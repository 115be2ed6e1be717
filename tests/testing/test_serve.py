"""``make serve`` starts cleanly: what it runs, on free ports, logs no ERROR and no WARNING."""

import base64
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3


ROOT = Path(__file__).resolve().parents[2]
CALLBACK_MACHINE = "arn:aws:states:us-west-2:123456789012:stateMachine:AddonSigningCallbackStep"
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()}
RECORDS = "/v1/buckets/stepfunction/collections/manual_steps/records"
BAD_LINE = re.compile(r"\b(ERROR|WARNING|CRITICAL)\b|Traceback|Warning:")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, headers=None):
    """The status and JSON body of a GET; ``(None, None)`` while nothing listens."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            body = r.read()
            is_json = r.headers.get_content_type() == "application/json"
            return r.status, json.loads(body) if is_json else body
    except urllib.error.HTTPError as e:
        return e.code, None
    except urllib.error.URLError:
        return None, None


def wait_for(check, process, log_path, what, timeout=60):
    """Poll ``check()`` until it returns something true, while the server runs."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert process.poll() is None, (
            f"make serve exited ({process.returncode}) before {what}:\n{log_path.read_text()}"
        )
        assert time.monotonic() < deadline, f"no {what} after {timeout} s:\n{log_path.read_text()}"
        time.sleep(0.1)
    return result


def test_make_serve_starts_and_stops_cleanly(tmp_path):
    port, emulator_port, mail_port, mailbox_port = (free_port() for _ in range(4))
    kinto = f"http://127.0.0.1:{port}"
    mailbox = f"http://127.0.0.1:{mailbox_port}/"
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "stepfunction.testing.serve", "--ini", "config.ini"]
            + ["--port", str(port), "--emulator-port", str(emulator_port)]
            + ["--mail-port", str(mail_port), "--mailbox-port", str(mailbox_port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: get(kinto + "/v1/__heartbeat__")[0] == 200, process, log_path, "heartbeat"
        )
        # What the README's walk-through and the dashboard ask first.
        status, hello = get(kinto + "/v1/", ADMIN)
        assert status == 200 and hello["capabilities"]["stepfunction"]
        for asset in ("", "dashboard.js", "dashboard.css", "favicon.svg"):
            assert get(f"{kinto}/v1/stepfunction/dashboard/{asset}")[0] == 200

        # The worker in Kinto polls the preloaded queue: a callback step becomes a record.
        sfn = boto3.client(
            "stepfunctions",
            endpoint_url=f"http://127.0.0.1:{emulator_port}",
            region_name="us-west-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        admin = hello["user"]["id"]
        step = {
            "data": {"subject": "make serve works", "reviewer": "reviewer@example.com"},
            "permissions": {"read": [admin]},
        }
        sfn.start_execution(stateMachineArn=CALLBACK_MACHINE, input=json.dumps(step))
        records = wait_for(
            lambda: (get(kinto + RECORDS, ADMIN)[1] or {}).get("data"),
            process,
            log_path,
            "its record",
        )
        assert [record["subject"] for record in records] == ["make serve works"]

        # Its reviewer's mail, in the local mailbox; its Approve link opens a confirmation.
        page = wait_for(
            lambda: b"/links/" in (get(mailbox)[1] or b"") and get(mailbox)[1],
            process,
            log_path,
            "the reviewer's mail",
        )
        assert b"make serve works" in page and b"reviewer@example.com" in page
        approve = re.search(rb'Approve: <a href="([^"]+)"', page).group(1).decode()
        assert approve.startswith(f"{kinto}/v1/stepfunction/links/")
        status, confirmation = get(approve)
        assert status == 200 and b"Approve this step?" in confirmation
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        returncode = process.wait(timeout=60)

    log = log_path.read_text()
    assert returncode == 0, log
    assert f"Serving on {kinto}" in log
    assert [line for line in log.splitlines() if BAD_LINE.search(line)] == []
