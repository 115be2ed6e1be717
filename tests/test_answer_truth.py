"""The record tells the truth, at once (issue 13, findings 3 and 4), and Kinto's heartbeat.

Finding 3: an endpoint that is not Step Functions (a web page answering 200) made answers
return 200 and records say SUCCEED while nothing was resumed. Finding 4: Kinto's timestamp race
in the history listener aborted an answer's write after Step Functions accepted it.
"""

import collections
import contextlib
import http.server
import logging
import threading
import time

import pytest
import transaction

from stepfunction import notices, probe, records
from tests.conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    answer_url,
    app_settings,
    lose_race_once,
    mail_settings,
    notice_of,
    permissions_of,
    post_step,
    user_id,
    wait_for,
)
from tests.test_concurrency import (
    all_at_once,
    callback_steps,
    free_port,
    kinto_processes,
    post_once,
)
from tests.test_mail_delivery import smtp  # noqa: F401 (a fixture)


# What a web server that is not Step Functions may answer: (status, content type, body).
WEB_PAGES = {
    "html": (200, "text/html", b"<html><body>Welcome!</body></html>"),
    "empty-json": (200, "application/json", b"{}"),
    "amz-json-without-request-id": (200, "application/x-amz-json-1.0", b"{}"),
    "not-found-page": (404, "text/html", b"<html><body>Not found</body></html>"),
}


class WebPage(http.server.BaseHTTPRequestHandler):
    page = WEB_PAGES["html"]

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def do_GET(self):
        status, content_type, body = self.page
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(page):
    """The URL of a real HTTP server answering every request with ``WEB_PAGES[page]``."""
    handler = type("Page", (WebPage,), {"page": WEB_PAGES.get(page)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=sorted(WEB_PAGES))
def web_page(request):
    """The URL of a real HTTP server that is not Step Functions."""
    with serving(request.param) as url:
        yield url


def make_collection(app):
    reviewer = user_id(app, REVIEWER)
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {"permissions": {"read": [reviewer]}}, headers=ADMIN)


def acl(app, record_id):
    return {k: sorted(v) for k, v in permissions_of(app, record_id).items()}


def read(app, record_id):
    return app.get(f"{STEPS}/records/{record_id}", headers=ADMIN).json["data"]


# --- Finding 3: an endpoint that is not Step Functions --------------------------------------


@pytest.mark.parametrize("answer", ["SUCCEED", "FAIL"])
def test_finding_3_web_page_as_endpoint_is_never_taken_as_accepted(
    app_factory, web_page, callback, workflows, answer, caplog
):
    token, execution = callback()
    app = app_factory(**{"stepfunction.aws_endpoint_url": web_page})
    make_collection(app)
    record = post_step(app, {"taskToken": token, "executionArn": execution})
    before = acl(app, record["id"])

    with caplog.at_level(logging.DEBUG, logger="stepfunction"):  # (botocore's DEBUG has all)
        response = app.post_json(
            answer_url(record["id"]), {"answer": answer}, headers=REVIEWER, status=502
        )

    assert response.json["errno"] == 201  # a backend's failure: the outcome is unknown
    assert "did not answer as Step Functions" in response.json["message"]
    stored = read(app, record["id"])
    assert stored == record  # nothing written: same status, no answer, same last_modified
    assert acl(app, record["id"]) == before
    assert workflows.status(execution) == "RUNNING"  # nothing was resumed
    assert token not in response.text
    assert token not in caplog.text


def test_finding_3_web_page_as_endpoint_fetches_no_task(app_factory, web_page, waiting, workflows):
    activity, execution = waiting()
    app = app_factory(**{"stepfunction.aws_endpoint_url": web_page})
    make_collection(app)
    record = post_step(app, {"activityArn": activity})

    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=502)

    assert read(app, record["id"]) == record
    uri = f"{STEPS}/records/{record['id']}"
    assert app.app.registry.storage.list_all(resource_name=records.TASK, parent_id=uri) == []
    assert workflows.status(execution) == "RUNNING"
    assert "ActivityStarted" not in workflows.history_types(execution)  # no task handed out


def test_finding_3_start_up_warns_once_naming_an_endpoint_that_is_not_step_functions(
    app_factory, web_page, caplog
):
    with caplog.at_level(logging.WARNING, logger="stepfunction"):
        app = app_factory(**{"stepfunction.aws_endpoint_url": web_page})

    warnings = [r for r in caplog.records if r.name == probe.__name__]
    assert len(warnings) == 1, caplog.text
    assert warnings[0].levelno == logging.WARNING
    assert web_page in warnings[0].getMessage()
    assert "does not answer as Step Functions" in warnings[0].getMessage()
    assert "testing" not in warnings[0].getMessage()  # no credentials
    app.get("/", status=200)  # start-up went on


def test_finding_3_start_up_goes_on_when_step_functions_is_unreachable(app_factory, caplog):
    closed = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="stepfunction"):
        app = app_factory(**{"stepfunction.aws_endpoint_url": closed})
    assert time.monotonic() - started < 2 * probe.PROBE_SECONDS + 5
    [warning] = [r for r in caplog.records if r.name == probe.__name__]
    assert closed in warning.getMessage()
    app.get("/", status=200)


def test_start_up_says_nothing_of_a_real_step_functions(app_factory, caplog):
    with caplog.at_level(logging.DEBUG, logger="stepfunction"):
        app_factory()
    assert not [r for r in caplog.records if r.name == probe.__name__], caplog.text


# --- Kinto's heartbeat ----------------------------------------------------------------------


def test_heartbeat_is_true_with_step_functions(app):
    assert app.get("/__heartbeat__").json["stepfunction"] is True


def test_heartbeat_is_false_with_an_endpoint_that_is_not_step_functions(app_factory, web_page):
    app = app_factory(**{"stepfunction.aws_endpoint_url": web_page})
    response = app.get("/__heartbeat__", status=503)
    assert response.json["stepfunction"] is False


def test_heartbeat_is_false_when_a_mail_is_overdue(app_factory, mailbox):
    app = app_factory(**mail_settings(mailbox))  # no process sends the mail: it waits
    make_collection(app)
    record = post_step(app, {"activityArn": _activity(), "reviewer": "bob@example.com"})
    notice = notice_of(app, record["id"])
    assert notice is not None
    assert app.get("/__heartbeat__").json["stepfunction"] is True  # due now: not overdue

    uri = f"{STEPS}/records/{record['id']}"
    registry = app.app.registry
    late = {**notice, "due": time.time() - notices.OVERDUE_SECONDS - 60}
    with transaction.manager:
        records.put_notice(_Bare(registry), uri, late)

    assert app.get("/__heartbeat__", status=503).json["stepfunction"] is False


@pytest.mark.parametrize("kind", ["step", "ended execution"])
def test_heartbeat_is_false_while_the_mail_server_refuses_every_send(
    app_factory,
    smtp,  # noqa: F811
    start_worker,
    monkeypatch,
    kind,
):
    """Failed sends are retried, each one due anew: the mail is overdue all the same."""
    from tests.test_ended_mail import ENDED, end, execution_app, running

    monkeypatch.setattr(notices, "OVERDUE_SECONDS", 1.0)  # the grace, shortened for the test
    smtp.reply = "451 4.3.0 Try again later"  # an outage: every send refused
    if kind == "step":
        app = app_factory(**mail_settings(smtp, **ENDED))
        make_collection(app)
        post_step(app, {"activityArn": _activity(), "reviewer": "bob@example.com"})
    else:
        app = execution_app(app_factory, smtp)
        running(app, "e1", ["bob@example.com"])
        end(app.app.registry, "e1")
    start_worker(app)

    def heartbeat():
        return app.get("/__heartbeat__", status="*").json["stepfunction"]

    wait_for(lambda: smtp.attempts.get("bob@example.com", 0) >= 2, 20, "sends refused")
    wait_for(lambda: heartbeat() is False, 20, "the heartbeat to say false")
    assert smtp.messages == []
    smtp.reply = None  # the server is back: the mail goes, the heartbeat says true again
    wait_for(lambda: smtp.to("bob@example.com"), 20, "the mail")
    wait_for(lambda: heartbeat() is True, 20, "the heartbeat to say true")


def _activity():
    return "arn:aws:states:us-west-2:123456789012:activity:heartbeat"


class _Bare:
    def __init__(self, registry):
        self.registry = registry


# --- Finding 4: Kinto's timestamp race after Step Functions accepted the answer -------------


# Kinto's timestamp race is PostgreSQL's: the memory backend has none.
@pytest.mark.parametrize("backend", ["postgresql"])
def test_finding_4_history_listener_losing_the_race_does_not_abort_an_accepted_answer(
    app, collection, callback, workflows, emulator, monkeypatch, caplog
):
    """The history plugin's write of the answer loses Kinto's timestamp race once (a real
    unique violation in PostgreSQL, after Step Functions accepted the answer): the answer
    still gets its 200, its record and one history entry; Step Functions is asked once."""
    token, execution = callback()
    record = post_step(app, {"taskToken": token, "executionArn": execution})
    before = acl(app, record["id"])
    raced = lose_race_once(monkeypatch, app.app.registry.storage)
    emulator.reset_calls()
    with caplog.at_level(logging.INFO):
        response = app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    monkeypatch.undo()

    assert raced and emulator.calls == ["SendTaskSuccess"]
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    assert response.json["data"]["status"] == "SUCCEED"
    stored = read(app, record["id"])
    assert stored["status"] == "SUCCEED"
    assert stored["answer"]["by"] == user_id(app, REVIEWER)
    assert acl(app, record["id"]) == before
    history = app.get(
        "/buckets/stepfunction/history",
        params={"uri": f"{STEPS}/records/{record['id']}", "action": "update"},
        headers=ADMIN,
    ).json["data"]
    assert len(history) == 1  # notified once, not once more by Kinto's tween
    assert history[0]["target"]["data"]["status"] == "SUCCEED"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.fixture
def two_servers(app, emulator, tmp_path):
    """Two Kinto processes on the test's PostgreSQL database; yields their base URLs."""
    with kinto_processes(app_settings("postgresql", emulator), tmp_path, 2) as running:
        yield running.urls


STORMS = 8
RECORDS_PER_STORM = 25
ANSWERS = ["SUCCEED", "FAIL", "SUCCEED"]  # mixed, and one repeated, per record


@pytest.mark.parametrize("backend", ["postgresql"])
def test_finding_4_storm_of_answers_every_record_agrees_with_its_execution_at_once(
    app, collection, workflows, two_servers
):
    """Storms of concurrent mixed answers over two processes on one PostgreSQL (the history
    plugin on): no answer gets Kinto's "please retry", and as soon as they have all returned,
    every record says how its execution ended."""
    expected = {"SUCCEED": "SUCCEEDED", "FAIL": "FAILED"}
    for storm in range(STORMS):
        steps = callback_steps(app, workflows, RECORDS_PER_STORM)
        calls = [
            (post_once, (two_servers[(i + j) % 2], record_id, answer))
            for i, (record_id, _) in enumerate(steps)
            for j, answer in enumerate(ANSWERS)
        ]

        results = all_at_once(calls)

        recorded = {record_id: read(app, record_id) for record_id, _ in steps}
        by_record = collections.defaultdict(list)
        for (_, (_, record_id, answer)), (status, body, retry) in zip(calls, results, strict=True):
            by_record[record_id].append((answer, status, retry, body.get("message")))
        for record_id, execution in steps:
            record = recorded[record_id]
            answered = by_record[record_id]
            assert record.get("status") in expected, (storm, record_id, record, answered)
            for answer, status, retry, _message in answered:
                assert not retry, (storm, record_id, answered)  # never "please retry"
                assert status == (200 if answer == record["status"] else 409), (
                    storm,
                    record_id,
                    answered,
                )
            assert workflows.wait_done(execution)["status"] == expected[record["status"]]
