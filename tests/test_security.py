"""The permission model, tried as an attacker would: each test is named after its attack.

Memory and PostgreSQL, real Kinto, the local Step Functions: what the workflow really did is
read back from it (DescribeExecution), never from mocks of the plugin's own calls.
"""

import collections
import concurrent.futures
import json
import logging
import time
import urllib.error
import urllib.request

import pytest
from kinto.core.testing import get_user_headers
from webtest.http import StopableWSGIServer

from stepfunction.schema import TOKEN_MASK
from tests.conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    STRANGER,
    answer_url,
    cross_site,
    permissions_of,
    post_step,
    stored_token,
    user_id,
    wait_for,
)


READER = get_user_headers("reader")
OTHER_REVIEWER = get_user_headers("other-reviewer")


@pytest.fixture
def steps(app):
    """The steps collection: written by the admin, readable by the reader and the reviewers."""
    readers = [user_id(app, h) for h in (READER, REVIEWER, OTHER_REVIEWER)]
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {"permissions": {"read": readers}}, headers=ADMIN)
    return STEPS


def record_of(app, record_id):
    return app.get(f"{STEPS}/records/{record_id}", headers=ADMIN).json["data"]


# 1. Every record the plugin writes became writable by system.Everyone.


@pytest.mark.parametrize(
    "outcome", ["answered", "repeated", "conflict", "timed-out", "unavailable", "bad-answer"]
)
def test_answers_never_widen_the_acl(app, steps, callback, workflows, emulator, outcome):
    token, execution = callback(timeout=1 if outcome == "timed-out" else 300)
    record = post_step(app, {"taskToken": token})
    acl = permissions_of(app, record["id"])
    url = answer_url(record["id"])
    if outcome in ("repeated", "conflict"):
        app.post_json(url, {"answer": "SUCCEED"}, headers=REVIEWER)
    if outcome == "timed-out":
        workflows.wait_done(execution)
    if outcome == "unavailable":
        emulator.inject_fault("SendTaskSuccess", count=3)
    answer = {"answer": "FAIL" if outcome == "conflict" else "SUCCEED"}
    if outcome == "bad-answer":
        emulator.inject_fault("SendTaskSuccess", "InvalidOutput", 400)

    app.post_json(url, answer, headers=REVIEWER, status="*")

    assert permissions_of(app, record["id"]) == acl
    assert "system.Everyone" not in json.dumps(acl)
    app.get(f"{STEPS}/records/{record['id']}", status=401)
    app.post_json(url, {"answer": "FAIL"}, status=401)


def test_fetched_token_never_widens_the_acl(app, steps, waiting, workflows):
    activity, execution = waiting()
    record = post_step(app, {"activityArn": activity})
    acl = permissions_of(app, record["id"])

    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)

    assert permissions_of(app, record["id"]) == acl
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_history_of_an_answer_is_not_public(app, steps, callback):
    token, _ = callback()
    record = post_step(app, {"taskToken": token})
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)

    app.get(f"/buckets/stepfunction/history?record_id={record['id']}", status=401)
    app.get(
        f"/buckets/stepfunction/history?record_id={record['id']}", headers=STRANGER, status=403
    )


# 2. Any signed-in user answered any pending activity task of the AWS account.


def test_own_bucket_reaches_no_task(app, steps, waiting, workflows, emulator):
    activity, execution = waiting()
    app.put_json("/buckets/mine", {}, headers=STRANGER)
    app.put_json("/buckets/mine/collections/steps", {}, headers=STRANGER)
    app.put_json(
        "/buckets/mine/collections/steps/records/r",
        {"data": {"activityArn": activity}},
        headers=STRANGER,
    )
    emulator.reset_calls()

    response = app.post_json(
        "/buckets/mine/collections/steps/records/r/stepfunction",
        {"answer": "FAIL", "cause": "mine now"},
        headers=STRANGER,
        status=404,
    )

    assert response.json["errno"] == 111
    assert emulator.calls == []
    assert workflows.status(execution) == "RUNNING"


def test_record_create_permission_cannot_designate_a_task(app, steps, waiting, workflows):
    activity, execution = waiting()
    stranger = user_id(app, STRANGER)
    app.patch_json(STEPS, {"permissions": {"record:create": [stranger]}}, headers=ADMIN)

    response = app.post_json(
        f"{STEPS}/records", {"data": {"activityArn": activity}}, headers=STRANGER, status=403
    )

    assert response.json["errno"] == 121
    assert response.json["details"]["name"] == "activityArn"
    app.post_json(f"{STEPS}/records", {"data": {"note": "harmless"}}, headers=STRANGER)
    assert workflows.status(execution) == "RUNNING"


@pytest.mark.parametrize(
    "field,value",
    [
        ("reviewer", ["alice@example.com", "mallory@example.com"]),
        ("reviewer", "mallory@example.com"),
        ("deadline", "2100-01-01T00:00:00Z"),
    ],
)
def test_reviewer_cannot_choose_who_is_asked(app, steps, callback, field, value):
    """A mailed link answers as an address in ``reviewer``: only the author names them."""
    token, _ = callback()
    record = post_step(
        app, {"taskToken": token, "reviewer": "alice@example.com", "deadline": 4102444800}
    )
    acl = permissions_of(app, record["id"])
    for method in ("patch_json", "put_json"):
        body = {"data": {field: value}}
        if method == "put_json":
            body = {"data": {**record, field: value}}
        response = getattr(app, method)(
            f"{STEPS}/records/{record['id']}", body, headers=REVIEWER, status=403
        )
        assert response.json["errno"] == 121
        assert response.json["details"]["name"] == field
    assert record_of(app, record["id"]) == record
    assert permissions_of(app, record["id"]) == acl
    # The author may.
    app.patch_json(f"{STEPS}/records/{record['id']}", {"data": {field: value}}, headers=ADMIN)


def test_record_create_permission_cannot_name_reviewers(app, steps):
    """Else anyone allowed to create records could have mail sent to any address."""
    stranger = user_id(app, STRANGER)
    app.patch_json(STEPS, {"permissions": {"record:create": [stranger]}}, headers=ADMIN)
    response = app.post_json(
        f"{STEPS}/records",
        {"data": {"reviewer": "victim@example.com"}},
        headers=STRANGER,
        status=403,
    )
    assert response.json["details"]["name"] == "reviewer"


@pytest.mark.parametrize("field", ["activityArn", "taskToken", "stateMachineArn", "executionArn"])
def test_reviewer_cannot_repoint_his_step(app, steps, waiting, callback, workflows, field):
    activity, execution = waiting()
    other_token, _ = callback()
    record = post_step(app, {"activityArn": activity, "subject": "mine"})
    values = {
        "activityArn": activity.replace("Review-", "Other-"),
        "taskToken": other_token,
        "stateMachineArn": "arn:aws:states:us-west-2:123456789012:stateMachine:Other",
        "executionArn": "arn:aws:states:us-west-2:123456789012:execution:Other:run",
    }
    acl = permissions_of(app, record["id"])

    response = app.patch_json(
        f"{STEPS}/records/{record['id']}",
        {"data": {field: values[field]}},
        headers=REVIEWER,
        status=403,
    )

    assert response.json["details"]["name"] == field
    assert record_of(app, record["id"]) == record
    assert permissions_of(app, record["id"]) == acl
    # Other fields stay the reviewer's to edit.
    app.patch_json(
        f"{STEPS}/records/{record['id']}", {"data": {"note": "noted"}}, headers=REVIEWER
    )
    assert permissions_of(app, record["id"]) == acl


def test_reviewer_of_another_step_cannot_answer_it(app, steps, callback, workflows, emulator):
    token, execution = callback()
    record = post_step(app, {"taskToken": token})
    post_step(app, {"subject": "his own"}, reviewer=OTHER_REVIEWER)
    emulator.reset_calls()

    app.post_json(answer_url(record["id"]), {"answer": "FAIL"}, headers=OTHER_REVIEWER, status=403)

    assert emulator.calls == []
    assert workflows.status(execution) == "RUNNING"


# 3. Read access was enough to answer: a reader copied a token.


def test_reader_sees_no_token_to_copy(app, steps, callback, workflows):
    token, execution = callback()
    record = post_step(app, {"taskToken": token})
    listed = app.get(f"{STEPS}/records", headers=READER)
    read = app.get(f"{STEPS}/records/{record['id']}", headers=READER)

    assert token not in listed.text and token not in read.text
    assert read.json["data"]["taskToken"] == TOKEN_MASK
    # What a reader can copy, the mask, answers nothing elsewhere.
    app.put_json("/buckets/mine", {}, headers=READER)
    app.put_json("/buckets/mine/collections/c", {}, headers=READER)
    copied = {k: v for k, v in read.json["data"].items() if k not in ("id", "last_modified")}
    app.put_json("/buckets/mine/collections/c/records/r", {"data": copied}, headers=READER)
    app.post_json(
        "/buckets/mine/collections/c/records/r/stepfunction",
        {"answer": "FAIL"},
        headers=READER,
        status=404,
    )
    assert workflows.status(execution) == "RUNNING"


def test_reader_with_a_copied_mask_in_the_steps_collection_answers_nothing(
    app, steps, callback, workflows
):
    token, execution = callback()
    record = post_step(app, {"taskToken": token})
    copied = {k: v for k, v in record.items() if k not in ("id", "last_modified")}
    mine = post_step(app, copied, reviewer=READER)  # the admin made him a record to answer

    response = app.post_json(
        answer_url(mine["id"]), {"answer": "FAIL"}, headers=READER, status=400
    )

    assert response.json["details"][0]["name"] == "taskToken"
    assert workflows.status(execution) == "RUNNING"
    assert record_of(app, record["id"]).get("status", "UNANSWERED") == "UNANSWERED"


# 4. Cross-site request forgery: form bodies.


@pytest.mark.parametrize(
    "content_type,body",
    [
        ("application/x-www-form-urlencoded", "answer=SUCCEED"),
        ("multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="a"'),
        ("text/plain", '{"answer": "SUCCEED"}'),
    ],
    ids=["urlencoded", "multipart", "text"],
)
def test_form_bodies_are_refused(app, steps, callback, workflows, emulator, content_type, body):
    token, execution = callback()
    record = post_step(app, {"taskToken": token})
    emulator.reset_calls()

    response = app.post(
        answer_url(record["id"]),
        body,
        headers={**REVIEWER, "Content-Type": content_type},
        status=415,
    )

    assert response.json["code"] == 415
    assert emulator.calls == []
    assert workflows.status(execution) == "RUNNING"


# 5. A reviewer fakes an answer by writing the status himself.


@pytest.mark.parametrize("how", ["patch", "put", "merge-patch", "json-patch", "batch"])
def test_reviewer_cannot_fake_an_answer(app, steps, callback, workflows, how):
    token, execution = callback()
    record = post_step(app, {"taskToken": token})
    url = f"{STEPS}/records/{record['id']}"
    faked = {"status": "SUCCEED"}
    if how == "patch":
        response = app.patch_json(url, {"data": faked}, headers=REVIEWER, status=403)
    elif how == "put":
        body = {"data": {**record, **faked}}
        response = app.put_json(url, body, headers=REVIEWER, status=403)
    elif how == "merge-patch":
        headers = {**REVIEWER, "Content-Type": "application/merge-patch+json"}
        response = app.patch(url, json.dumps({"data": faked}), headers=headers, status=403)
    elif how == "json-patch":
        headers = {**REVIEWER, "Content-Type": "application/json-patch+json"}
        ops = [{"op": "add", "path": "/data/status", "value": "SUCCEED"}]
        response = app.patch(url, json.dumps(ops), headers=headers, status=403)
    else:
        batch = {"requests": [{"method": "PATCH", "path": url, "body": {"data": faked}}]}
        (response,) = app.post_json("/batch", batch, headers=REVIEWER).json["responses"]
        assert response["status"] == 403
        response = type("Batched", (), {"json": response["body"]})

    assert response.json["errno"] == 121
    assert record_of(app, record["id"]) == record
    answered = app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    assert answered.json["data"]["status"] == "SUCCEED"
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_reviewer_cannot_write_the_answer_audit(app, steps, callback):
    token, _ = callback()
    record = post_step(app, {"taskToken": token})
    app.patch_json(
        f"{STEPS}/records/{record['id']}",
        {"data": {"answer": {"by": "someone else"}}},
        headers=REVIEWER,
        status=403,
    )


def test_kinto_admin_full_put_with_the_mask_is_accepted(app, steps, callback):
    """kinto-admin saves a record with a PUT of everything it shows, the mask included."""
    token, _ = callback()
    record = post_step(app, {"taskToken": token, "subject": "Pay", "note": "before"})
    body = {"data": {**record, "note": "after"}}

    saved = app.put_json(f"{STEPS}/records/{record['id']}", body, headers=REVIEWER).json["data"]

    assert saved["note"] == "after" and saved["taskToken"] == TOKEN_MASK
    answered = app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    assert answered.json["data"]["status"] == "SUCCEED"  # the stored token still answers


def test_reviewer_cannot_delete_a_pending_step(app, steps, callback, workflows):
    token, execution = callback()
    record = post_step(app, {"taskToken": token})

    app.delete(f"{STEPS}/records/{record['id']}", headers=REVIEWER, status=403)

    app.delete(f"{STEPS}/records/{record['id']}", headers=ADMIN)
    # Re-created under the same id, it has no token: the deleted one's is gone with it.
    post_step(app, {"subject": "again"}, record_id=record["id"])
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=400)
    assert workflows.status(execution) == "RUNNING"


# 6. The record was wrong after a fault.


@pytest.mark.parametrize("answer,status", [("SUCCEED", "SUCCEEDED"), ("FAIL", "FAILED")])
def test_lost_reply_is_settled_from_the_execution_history(
    app, steps, callback, workflows, emulator, answer, status
):
    """SendTask* applied, its reply lost, botocore retried and got TaskDoesNotExist."""
    token, execution = callback()
    record = post_step(app, {"taskToken": token, "executionArn": execution})
    action = "SendTaskSuccess" if answer == "SUCCEED" else "SendTaskFailure"
    emulator.inject_fault(action, applied=True)

    response = app.post_json(answer_url(record["id"]), {"answer": answer}, headers=REVIEWER)

    assert response.json["data"]["status"] == answer
    assert response.json["data"]["answer"]["by"] == user_id(app, REVIEWER)
    assert workflows.wait_done(execution)["status"] == status


def test_lost_reply_without_an_execution_is_never_called_timed_out(
    app, steps, callback, workflows, emulator
):
    token, execution = callback()
    record = post_step(app, {"taskToken": token})
    emulator.inject_fault("SendTaskSuccess", applied=True)

    response = app.post_json(
        answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=502
    )

    assert "can't be told" in response.json["message"]
    assert record_of(app, record["id"]).get("status", "UNANSWERED") == "UNANSWERED"
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_answer_from_elsewhere_is_read_from_the_history(app, steps, callback, workflows):
    token, execution = callback()
    record = post_step(app, {"taskToken": token, "executionArn": execution})
    workflows.sfn.send_task_failure(taskToken=token, error="Elsewhere", cause="by a Lambda")
    workflows.wait_done(execution)

    response = app.post_json(
        answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=409
    )

    assert "FAIL" in response.json["message"]
    stored = record_of(app, record["id"])
    assert stored["status"] == "FAIL" and stored["answer"]["by"] is None


# 8. Memory grew with attacker input: a region per ARN.


def test_unknown_region_is_refused_and_nothing_sent(app, steps, emulator):
    record = post_step(app, {"activityArn": "arn:aws:states:us-west-123:123456789012:activity:A"})
    emulator.reset_calls()

    response = app.post_json(
        answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=400
    )

    assert response.json["details"][0]["name"] == "region"
    assert emulator.calls == []


# 13. A collection schema that rejects the token put it in the logs and the failure cause.


def test_schema_refusal_names_no_token(app_factory, workflows, start_worker, caplog):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="stepfunction")
    queue = workflows.queue()
    app = app_factory(
        **{"stepfunction.queues": queue, "experimental_collection_schema_validation": "true"}
    )
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    strict = {"type": "object", "properties": {"taskToken": {"type": "string", "maxLength": 3}}}
    app.put_json(STEPS, {"data": {"schema": strict}}, headers=ADMIN)
    execution = workflows.start(workflows.callback_machine(queue), {"subject": "strict"})

    start_worker(app)
    described = workflows.wait_done(execution)

    assert described["status"] == "FAILED" and described["error"] == "stepfunction.InvalidRecord"
    token = _token_of(workflows, execution)
    assert token not in described["cause"]
    assert token not in caplog.text


def _token_of(workflows, execution):
    events = workflows.sfn.get_execution_history(executionArn=execution)["events"]
    scheduled = next(e for e in events if e["type"] == "TaskScheduled")
    parameters = json.loads(scheduled["taskScheduledEventDetails"]["parameters"])
    return parameters["MessageBody"]["TaskToken"]


# 14. Odd input answered 500.


@pytest.mark.parametrize(
    "record_id,status",
    [("%C3%A9", 400), ("a%00b", 400), ("a" * 300, 404), ("-dash", 400)],
    ids=["non-ascii", "nul", "long", "leading-dash"],
)
def test_odd_record_ids_are_4xx(app, steps, record_id, status):
    response = app.post_json(
        answer_url(record_id), {"answer": "SUCCEED"}, headers=ADMIN, status=status
    )
    assert response.json["code"] == status


@pytest.mark.parametrize(
    "data",
    [
        {"subject": 42},
        {"reviewer": ["a@example.com", 3]},
        {"activityArn": 7},
        {"executionArn": []},
    ],
    ids=["subject", "reviewer", "activity", "execution"],
)
def test_non_string_fields_are_4xx(app, steps, data):
    record = app.post_json(
        f"{STEPS}/records",
        {"data": data, "permissions": {"write": [user_id(app, REVIEWER)]}},
        headers=ADMIN,
        status="*",
    )
    assert record.status_code < 500
    if record.status_code < 300:
        response = app.post_json(
            answer_url(record.json["data"]["id"]),
            {"answer": "SUCCEED"},
            headers=REVIEWER,
            status="*",
        )
        assert 400 <= response.status_code < 500


def test_tokens_up_to_2048_characters_are_taken(app, steps, emulator):
    record = post_step(app, {"taskToken": "t" * 2048})
    assert record["taskToken"] == TOKEN_MASK
    response = app.post_json(
        answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status="*"
    )
    assert response.status_code == 410  # the emulator knows no such task
    too_long = {"data": {"taskToken": "t" * 2049}}
    app.post_json(f"{STEPS}/records", too_long, headers=ADMIN, status=400)


# 7. Four requests froze the server: answers long-polling idle activities.


def test_answers_on_idle_activities_dont_freeze_the_server(app, steps, workflows, emulator):
    records = [post_step(app, {"activityArn": workflows.activity()}) for _ in range(24)]
    server = StopableWSGIServer.create(app.app, host="127.0.0.1", threads=4)
    assert server.wait()
    base = server.application_url.rstrip("/")
    emulator.set_poll_seconds(8)
    try:
        with concurrent.futures.ThreadPoolExecutor(len(records)) as pool:
            answers = [pool.submit(_post, base, r["id"]) for r in records]
            wait_for(lambda: emulator.calls.count("GetActivityTask") >= 2, 5, "long polls")
            started = time.monotonic()
            with urllib.request.urlopen(base + "/v1/__heartbeat__", timeout=5) as heartbeat:
                assert heartbeat.status == 200
            # Frozen, it would wait for the 8 s polls; 1 s left little margin on a loaded machine.
            assert time.monotonic() - started < 4
            statuses = collections.Counter(answer.result()[0] for answer in answers)
    finally:
        emulator.set_poll_seconds(1)
        server.shutdown()
    # Two answers long-polled (nothing was pending: 409), the others were told to retry.
    assert statuses == {409: 2, 503: 22}
    assert emulator.calls.count("GetActivityTask") == 2


def _post(base, record_id):
    request = urllib.request.Request(
        base + "/v1" + answer_url(record_id),
        data=json.dumps({"answer": "SUCCEED"}).encode(),
        headers={**REVIEWER, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# 11. Worker: an execution input naming an answered record reopened it.


@pytest.mark.parametrize("state", ["answered", "pending"])
def test_execution_input_cannot_take_over_a_record(
    app_factory, workflows, callback, start_worker, state
):
    activity = workflows.activity()
    app = app_factory(**{"stepfunction.activities": activity})
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {}, headers=ADMIN)
    token, _ = callback()
    record = post_step(app, {"taskToken": token, "subject": "the real one"}, record_id="taken")
    if state == "answered":
        app.post_json(answer_url("taken"), {"answer": "SUCCEED"}, headers=REVIEWER)
    before = record_of(app, "taken")
    acl = permissions_of(app, "taken")
    hostile = {"data": {"id": "taken", "subject": "something else"}, "permissions": {}}
    execution = workflows.start(workflows.activity_machine(activity), hostile)

    start_worker(app)
    described = workflows.wait_done(execution)

    assert described["status"] == "FAILED"
    assert described["error"] == "stepfunction.RecordTaken"
    assert record_of(app, "taken") == before
    assert permissions_of(app, "taken") == acl
    assert record["subject"] == "the real one"


# Tokens are secrets: a whole flow, every response and log line scanned.


def test_no_response_or_log_line_holds_a_token(
    app_factory, workflows, callback, start_worker, caplog
):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="stepfunction")
    activity = workflows.activity()
    app = app_factory(**{"stepfunction.activities": activity})
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {"permissions": {"read": [user_id(app, READER)]}}, headers=ADMIN)
    reviewer = user_id(app, REVIEWER)
    responses = []

    def keep(response):
        responses.append(response)
        return response

    # A callback token posted with its record, in a batch and alone.
    posted, _ = callback()
    batched, _ = callback()
    keep(app.post_json(f"{STEPS}/records", {"data": {"taskToken": posted}}, headers=ADMIN))
    batch = {
        "requests": [
            {
                "method": "PUT",
                "path": f"{STEPS}/records/in-a-batch",
                "body": {"data": {"taskToken": batched}, "permissions": {"write": [reviewer]}},
            }
        ]
    }
    keep(app.post_json("/batch", batch, headers=ADMIN))
    # A task the worker stores.
    execution = workflows.start(
        workflows.activity_machine(activity),
        {"data": {"subject": "worker"}, "permissions": {"write": [reviewer]}},
    )
    start_worker(app)
    wait_for(lambda: "ActivityStarted" in workflows.history_types(execution), 10, "the task")
    worker_record = wait_for(
        lambda: [
            r
            for r in app.get(f"{STEPS}/records", headers=ADMIN).json["data"]
            if r.get("subject") == "worker"
        ],
        10,
        "the worker's record",
    )[0]
    # Answers, lists, history, the dashboard's queries.
    keep(app.post_json(answer_url("in-a-batch"), {"answer": "SUCCEED"}, headers=REVIEWER))
    tokens = [posted, batched, stored_token(app, worker_record["id"])]
    keep(app.post_json(answer_url(worker_record["id"]), {"answer": "FAIL"}, headers=REVIEWER))
    keep(app.post_json(answer_url("in-a-batch"), {"answer": "FAIL"}, headers=REVIEWER, status=409))
    for headers in (ADMIN, REVIEWER, READER):
        keep(app.get(f"{STEPS}/records", headers=headers))
        keep(app.get(f"{STEPS}/records?_sort=-last_modified&status=UNANSWERED", headers=headers))
    keep(app.get("/buckets/stepfunction/history", headers=ADMIN))
    keep(app.get("/stepfunction/dashboard/"))

    text = "\n".join(r.text for r in responses) + caplog.text
    assert len(responses) == 13
    for token in tokens:
        assert token and token not in text
    assert workflows.wait_done(execution)["status"] == "FAILED"


# 4. Cross-site request forgery, in a real browser with cached Basic credentials.


ATTACK_PAGE = """<!doctype html><html><body>
<form id="urlencoded" method="POST" action="{url}">
  <input name="answer" value="SUCCEED">
</form>
<form id="text" method="POST" action="{url}" enctype="text/plain">
  <input name='{{"answer": "SUCCEED", "x": "' value='"}}'>
</form>
<script>document.getElementById("{form}").submit();</script>
</body></html>"""


@pytest.mark.parametrize("form", ["urlencoded", "text"])
def test_cross_site_form_answers_nothing(app, steps, callback, workflows, form):
    from playwright.sync_api import sync_playwright

    from stepfunction.testing.browser import launch_chromium

    token, execution = callback()
    record = post_step(app, {"taskToken": token})
    path = "/v1" + answer_url(record["id"])

    with cross_site(app, lambda kinto: ATTACK_PAGE.format(url=kinto + path, form=form)) as urls:
        kinto, evil = urls
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            credentials = {"username": "reviewer", "password": "secret"}
            context = browser.new_context(http_credentials=credentials)
            page = context.new_page()
            with page.expect_response(lambda r: r.url == kinto + path) as posted:
                page.goto(evil)
            assert posted.value.status == 415
            browser.close()
    assert workflows.status(execution) == "RUNNING"
    assert record_of(app, record["id"]) == record


def test_step_functions_down_then_back_loses_nothing(app, steps, callback, workflows, emulator):
    """Step Functions unreachable: 503 with Retry-After, the record untouched; then back."""
    token, execution = callback()
    record = post_step(app, {"taskToken": token, "executionArn": execution})
    emulator.stop()
    try:
        response = app.post_json(
            answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=503
        )
    finally:
        emulator.start()
    assert int(response.headers["Retry-After"]) > 0
    assert record_of(app, record["id"]) == record

    answered = app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)

    assert answered.json["data"]["status"] == "SUCCEED"
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
