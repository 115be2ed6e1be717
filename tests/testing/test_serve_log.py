"""The README's walk-through against ``make serve``, and what its log shows a person: one
readable line per request, nothing empty, nothing alarming (no ERROR, no WARNING)."""

import base64
import http.cookiejar
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import boto3

from stepfunction.testing.emulator import MANUAL_STEP_ACTIVITY
from tests.testing.test_serve import BAD_LINE, ROOT, free_port, get, wait_for


ACCOUNT = "123456789012"
MACHINES = f"arn:aws:states:us-west-2:{ACCOUNT}:stateMachine:"
ACTIVITY = f"arn:aws:states:us-west-2:{ACCOUNT}:activity:{MANUAL_STEP_ACTIVITY}"
STEPS = "/v1/buckets/stepfunction/collections/manual_steps"
# A line of the log: its time, level and logger, then a message that is not empty.
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ +\[[^\]]+\] \S")


def basic(user):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:s3cret".encode()).decode()}


ADMIN, REVIEWER = basic("admin"), basic("reviewer")


def call(method, url, body=None, headers=None, opener=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with (opener or urllib.request.build_opener()).open(request) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


def test_the_walk_through_logs_one_readable_line_per_request(tmp_path):
    port, emulator_port, mail_port, mailbox_port = (free_port() for _ in range(4))
    kinto = f"http://127.0.0.1:{port}"
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
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=f"http://127.0.0.1:{emulator_port}",
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    def status_of(execution, wanted):
        def check():
            return sfn.describe_execution(executionArn=execution)["status"] == wanted

        return wait_for(check, process, log_path, f"{execution} {wanted}")

    try:
        wait_for(lambda: get(kinto + "/v1/__heartbeat__")[0] == 200, process, log_path, "Kinto")
        # The bucket, the collection, the reviewer's id (GET /v1/ says it).
        assert call("PUT", kinto + "/v1/buckets/stepfunction", headers=ADMIN)[0] == 201
        assert call("PUT", kinto + STEPS, headers=ADMIN)[0] == 201
        reviewer = call("GET", kinto + "/v1/", headers=REVIEWER)[1]["user"]["id"]
        assert reviewer.startswith("basicauth:")

        # The activity: an execution, the record of its step, the reviewer's answer.
        execution = sfn.start_execution(
            stateMachineArn=MACHINES + "AddonSigningManualStep", input="{}"
        )["executionArn"]
        body = {
            "data": {
                "subject": "Please review and sign-off (or not) on this addon",
                "stateMachineArn": MACHINES + "AddonSigningManualStep",
                "activityArn": ACTIVITY,
            },
            "permissions": {"write": [reviewer]},
        }
        status, created = call("POST", kinto + STEPS + "/records", body, ADMIN)
        assert status == 201
        answer = f"{kinto}{STEPS}/records/{created['data']['id']}/stepfunction"
        status, answered = call("POST", answer, {"answer": "SUCCEED"}, REVIEWER)
        assert (status, answered["data"]["status"]) == (200, "SUCCEED")
        status_of(execution, "SUCCEEDED")

        # The worker: a callback step becomes a record; the reviewer rejects it.
        step = {
            "data": {"subject": "Verify the device of Ada"},
            "permissions": {"write": [reviewer]},
        }
        execution = sfn.start_execution(
            stateMachineArn=MACHINES + "AddonSigningCallbackStep", input=json.dumps(step)
        )["executionArn"]

        def the_record():
            listed = call("GET", kinto + STEPS + "/records", headers=REVIEWER)[1] or {}
            return [r for r in listed.get("data", []) if r["subject"] == step["data"]["subject"]]

        (record,) = wait_for(the_record, process, log_path, "the worker's record")
        answer = f"{kinto}{STEPS}/records/{record['id']}/stepfunction"
        assert call("POST", answer, {"answer": "FAIL"}, REVIEWER)[0] == 200
        status_of(execution, "FAILED")

        # By mail: the link's page, then its form, as a browser posts it (with its cookie).
        mail = {"data": {"subject": "Sign off add-on 42", "reviewer": "ada@example.com"}}
        execution = sfn.start_execution(
            stateMachineArn=MACHINES + "AddonSigningCallbackStep", input=json.dumps(mail)
        )["executionArn"]
        page = wait_for(
            lambda: (
                b"Sign off add-on 42" in (get(f"http://127.0.0.1:{mailbox_port}/")[1] or b"")
                and get(f"http://127.0.0.1:{mailbox_port}/")[1]
            ),
            process,
            log_path,
            "the mail",
        )
        reject = re.search(rb'Reject:  <a href="([^"]+)"', page).group(1).decode()
        # The mail as a mail client shows it: its HTML part, with buttons.
        status, markup = get(f"http://127.0.0.1:{mailbox_port}/0.html")
        assert status == 200 and b">Reject</a>" in markup and reject.encode() in markup
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        with browser.open(reject) as response:
            csrf = re.search(rb'name="csrf" value="([^"]+)"', response.read()).group(1)
        form = urllib.parse.urlencode({"csrf": csrf.decode(), "reason": "Wrong add-on"})
        with browser.open(urllib.request.Request(reject, data=form.encode())) as response:
            assert response.status == 200
        status_of(execution, "FAILED")
    finally:
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=60)

    log = log_path.read_text()
    assert returncode == 0, log
    lines = log.splitlines()
    assert [line for line in lines if BAD_LINE.search(line)] == [], log
    # Besides pserve's own "Starting server in PID …", every line is a log record's.
    odd = [line for line in lines if not LINE.match(line) and "Starting server in PID" not in line]
    assert odd == [], log
    assert "[mail.log]" not in log and "Trimming of old history" not in log
    summaries = [line for line in lines if "[request.summary]" in line]
    assert any('"PUT /v1/buckets/stepfunction" 201 (' in line for line in summaries), log
    assert any('/stepfunction" 200 (' in line for line in summaries), log
    assert any('"POST /v1/stepfunction/links/(token)" 200 (' in line for line in summaries), log
    assert not any(len(line) > 300 for line in lines), log
