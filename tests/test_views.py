"""The answer endpoint against Kinto (memory and PostgreSQL) and the local Step Functions."""

import json
from pathlib import Path

import pytest

from stepfunction.schema import TOKEN_MASK
from tests import failing_listener
from tests.conftest import ADMIN, REVIEWER, STEPS, STRANGER, answer_url, post_step, user_id


FIXTURES = Path(__file__).parent / "fixtures"
SEED_EVENT = json.loads((FIXTURES / "seed_post_to_kinto_event.json").read_text())
SEED_MACHINE = json.loads((FIXTURES / "seed_state_machine.json").read_text())
SEED_ACCOUNT = "927034868273"


def test_capability_is_listed(app):
    capability = app.get("/").json["capabilities"]["stepfunction"]
    assert capability["description"]
    assert capability["url"]
    assert capability["version"]


def test_seed_walkthrough_signs_off_the_execution(app, collection, workflows, monkeypatch):
    """The seed's exact state machine step and Lambda event, answered by the reviewer."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", SEED_ACCOUNT)
    manual_step = SEED_MACHINE["States"]["ManualStep"]
    workflows.sfn.create_activity(name=manual_step["Resource"].rsplit(":", 1)[1])
    machine = workflows.sfn.create_state_machine(
        name="AddonSigningManualStep",
        definition=json.dumps(
            {
                "Comment": SEED_MACHINE["Comment"],
                "StartAt": "ManualStep",
                "States": {"ManualStep": manual_step},
            }
        ),
        roleArn=f"arn:aws:iam::{SEED_ACCOUNT}:role/StepFunctions",
    )["stateMachineArn"]
    assert machine == SEED_EVENT["data"]["data"]["stateMachineArn"]
    execution = workflows.start(machine, SEED_EVENT["data"])
    workflows.wait_scheduled(execution)

    record_body = json.loads(json.dumps(SEED_EVENT["data"]))
    record_body["permissions"]["write"] = [user_id(app, REVIEWER)]
    posted = app.post_json(
        SEED_EVENT["options"]["path"].removeprefix("/v1"), record_body, headers=ADMIN
    ).json["data"]

    response = app.post_json(answer_url(posted["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)

    data = response.json["data"]
    assert data["status"] == "SUCCEED"
    assert data["subject"] == SEED_EVENT["data"]["data"]["subject"]
    assert data["last_modified"] > posted["last_modified"]
    described = workflows.wait_done(execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"message": "signed off"}


def test_succeed_sends_the_given_output(app, collection, waiting, workflows):
    activity, execution = waiting({"addon": "tabs"})
    record = post_step(app, {"activityArn": activity})

    app.post_json(
        answer_url(record["id"]),
        {"answer": "SUCCEED", "output": {"signed": True, "by": "reviewer"}},
        headers=REVIEWER,
    )

    described = workflows.wait_done(execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"signed": True, "by": "reviewer"}


def test_fail_sends_the_default_error_and_cause(app, collection, waiting, workflows):
    activity, execution = waiting()
    record = post_step(app, {"activityArn": activity})

    response = app.post_json(answer_url(record["id"]), {"answer": "FAIL"}, headers=REVIEWER)

    assert response.json["data"]["status"] == "FAIL"
    described = workflows.wait_done(execution)
    assert described["status"] == "FAILED"
    assert described["error"] == "Not signing off"
    assert described["cause"] == "After reviewing, the decision was made to not sign off"


def test_fail_sends_the_given_error_and_cause(app, collection, waiting, workflows):
    activity, execution = waiting()
    record = post_step(app, {"activityArn": activity})

    app.post_json(
        answer_url(record["id"]),
        {"answer": "FAIL", "error": "Rejected", "cause": "Uses eval()"},
        headers=REVIEWER,
    )

    described = workflows.wait_done(execution)
    assert (described["status"], described["error"], described["cause"]) == (
        "FAILED",
        "Rejected",
        "Uses eval()",
    )


def test_fetched_token_is_stored_apart_and_never_shown(app, collection, waiting, workflows):
    activity, execution = waiting()
    record = post_step(app, {"activityArn": activity})

    response = app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)

    stored = app.get(f"{collection}/records/{record['id']}", headers=ADMIN).json["data"]
    assert stored["taskToken"] == TOKEN_MASK
    assert response.json["data"]["taskToken"] == TOKEN_MASK
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_callback_token_record_is_answered_without_polling(app, collection, workflows, emulator):
    """The `.waitForTaskToken` pattern: the workflow delivers its token, a record carries it."""
    queue = workflows.queue()
    machine = workflows.callback_machine(queue)
    execution = workflows.start(machine, {"addon": "tabs"})
    message = workflows.receive_token(queue)
    record = post_step(app, {"taskToken": message["TaskToken"], "stateMachineArn": machine})
    emulator.reset_calls()

    response = app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)

    assert response.json["data"]["status"] == "SUCCEED"
    assert emulator.calls == ["SendTaskSuccess"]
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_answer_is_written_through_the_record_resource(app, collection, waiting):
    """History (a listener of Kinto's resource events) shows who answered."""
    activity, _ = waiting()
    record = post_step(app, {"activityArn": activity})

    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)

    entries = app.get(
        f"/buckets/stepfunction/history?record_id={record['id']}", headers=ADMIN
    ).json["data"]
    answered = [e for e in entries if e["target"]["data"].get("status") == "SUCCEED"]
    assert [e["user_id"] for e in answered] == [user_id(app, REVIEWER)]
    assert answered[0]["action"] == "update"
    assert answered[0]["uri"] == f"{collection}/records/{record['id']}"


# Permissions: checked first, and nothing reaches AWS without them.


@pytest.mark.parametrize(
    "headers,status,errno", [(None, 401, 104), (STRANGER, 403, 121)], ids=["anonymous", "stranger"]
)
def test_without_write_permission_nothing_reaches_aws(
    app, collection, waiting, workflows, emulator, headers, status, errno
):
    activity, execution = waiting()
    record = post_step(app, {"activityArn": activity})
    emulator.reset_calls()

    response = app.post_json(
        answer_url(record["id"]),
        {"answer": "SUCCEED"},
        headers=headers or {},
        status=status,
    )

    assert response.json["errno"] == errno
    assert emulator.calls == []
    assert workflows.status(execution) == "RUNNING"


def test_permission_is_checked_before_the_body(app, collection, emulator):
    record = post_step(app, {"taskToken": "x" * 40})
    app.post_json(answer_url(record["id"]), {"answer": "MAYBE"}, status=401)
    app.post_json(answer_url(record["id"]), {"answer": "MAYBE"}, headers=STRANGER, status=403)


def test_read_only_user_cannot_answer(app, collection, emulator):
    """The reviewer can read the whole collection, but answering needs write on the record."""
    record = app.post_json(
        f"{collection}/records", {"data": {"taskToken": "x" * 40}}, headers=ADMIN
    ).json["data"]
    emulator.reset_calls()
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=403)
    assert emulator.calls == []


@pytest.mark.parametrize("who", [ADMIN, REVIEWER, STRANGER], ids=["admin", "reviewer", "stranger"])
def test_missing_record_answers_as_a_get_would(app, collection, emulator, who):
    path = f"{collection}/records/abc"
    emulator.reset_calls()
    expected = app.get(path, headers=who, status="*")

    response = app.post_json(
        path + "/stepfunction", {"answer": "SUCCEED"}, headers=who, status="*"
    )

    assert (response.status_code, response.json) == (expected.status_code, expected.json)
    assert emulator.calls == []


# Bad input: Kinto's error format, and nothing sent.


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"answer": "MAYBE"},
        {"answer": "succeed"},
        {"answer": "SUCCEED", "note": "lgtm"},  # (comment is one of its fields)
        {"answer": "FAIL", "error": "E" * 257},
        {"answer": "FAIL", "cause": 42},
        {"answer": "SUCCEED", "output": "x" * (256 * 1024)},
        ["SUCCEED"],
    ],
    ids=[
        "empty",
        "unknown",
        "lowercase",
        "extra-key",
        "long-error",
        "cause-not-text",
        "huge-output",
        "list",
    ],
)
def test_invalid_body_is_a_400(app, collection, emulator, body):
    record = post_step(app, {"taskToken": "x" * 40})
    emulator.reset_calls()

    response = app.post_json(answer_url(record["id"]), body, headers=REVIEWER, status=400)

    assert response.json["errno"] == 107
    assert response.json["code"] == 400
    assert emulator.calls == []


def test_body_that_is_not_json_is_a_400(app, collection, emulator):
    record = post_step(app, {"taskToken": "x" * 40})
    emulator.reset_calls()  # (start-up asked Step Functions once)
    response = app.post(
        answer_url(record["id"]),
        "answer=SUCCEED{",
        headers={**REVIEWER, "Content-Type": "application/json"},
        status=400,
    )
    assert response.json["code"] == 400
    assert emulator.calls == []


@pytest.mark.parametrize(
    "data,field",
    [
        ({"subject": "no way to answer"}, "record"),
        (
            {"activityArn": "arn:aws:states:us-west-2:927034868273:stateMachine:Nope"},
            "activityArn",
        ),
        ({"activityArn": "ManualStepTest"}, "activityArn"),
        ({"taskToken": "x" * 40, "stateMachineArn": "arn:aws:lambda:::nope"}, "stateMachineArn"),
        ({"activityArn": "arn:aws:states:us-west-123:123456789012:activity:Nope"}, "region"),
        ({"activityArn": "arn:aws:states:us-west-2:123456789012:activity:Nope\n"}, "activityArn"),
        ({"activityArn": ["arn:aws:states:us-west-2:123456789012:activity:A"]}, "activityArn"),
    ],
    ids=[
        "nothing",
        "wrong-kind",
        "not-an-arn",
        "bad-machine",
        "unknown-region",
        "newline",
        "list",
    ],
)
def test_record_that_cannot_be_answered_is_a_400(app, collection, emulator, data, field):
    """Shapes the guard lets an author write, but that name no task to answer."""
    record = post_step(app, data)
    emulator.reset_calls()

    response = app.post_json(
        answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=400
    )

    assert response.json["errno"] == 107
    assert [d["name"] for d in response.json["details"]] == [field]
    assert emulator.calls == []


def test_unknown_activity_is_a_400_and_nothing_is_written(app, collection, emulator):
    activity = "arn:aws:states:us-west-2:123456789012:activity:DoesNotExist"
    record = post_step(app, {"activityArn": activity})

    response = app.post_json(
        answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=400
    )

    assert "DoesNotExist" in response.json["message"]
    stored = app.get(f"{collection}/records/{record['id']}", headers=ADMIN).json["data"]
    assert stored == record


# Answers already recorded, tasks gone or missing.


def test_repeating_the_recorded_answer_sends_nothing(app, collection, waiting, emulator):
    activity, _ = waiting()
    record = post_step(app, {"activityArn": activity})
    url = answer_url(record["id"])
    first = app.post_json(url, {"answer": "FAIL"}, headers=REVIEWER).json["data"]
    emulator.reset_calls()

    again = app.post_json(url, {"answer": "FAIL"}, headers=REVIEWER).json["data"]

    assert again == first
    assert emulator.calls == []


def test_a_different_answer_once_answered_is_a_409(app, collection, waiting, workflows, emulator):
    activity, execution = waiting()
    record = post_step(app, {"activityArn": activity})
    url = answer_url(record["id"])
    app.post_json(url, {"answer": "SUCCEED"}, headers=REVIEWER)
    emulator.reset_calls()

    response = app.post_json(url, {"answer": "FAIL"}, headers=REVIEWER, status=409)

    assert response.json["errno"] == 122
    assert emulator.calls == []
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_no_execution_waiting_is_a_409(app, collection, workflows):
    activity = workflows.activity()
    record = post_step(app, {"activityArn": activity})

    response = app.post_json(
        answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=409
    )

    assert activity in response.json["message"]
    stored = app.get(f"{collection}/records/{record['id']}", headers=ADMIN).json["data"]
    assert "taskToken" not in stored


def test_timed_out_task_is_a_410_then_answered_without_aws(app, collection, workflows, emulator):
    queue = workflows.queue()
    execution = workflows.start(workflows.callback_machine(queue, timeout=1))
    token = workflows.receive_token(queue)["TaskToken"]
    assert workflows.wait_done(execution)["status"] == "FAILED"
    record = post_step(app, {"taskToken": token})
    url = answer_url(record["id"])

    response = app.post_json(url, {"answer": "SUCCEED"}, headers=REVIEWER, status=410)
    assert "TaskTimedOut" in response.json["message"]
    stored = app.get(f"{collection}/records/{record['id']}", headers=ADMIN).json["data"]
    assert stored["status"] == "TIMED_OUT"

    emulator.reset_calls()
    app.post_json(url, {"answer": "SUCCEED"}, headers=REVIEWER, status=410)
    assert emulator.calls == []


def test_token_answered_elsewhere_is_a_410(app, collection, workflows):
    queue = workflows.queue()
    execution = workflows.start(workflows.callback_machine(queue))
    token = workflows.receive_token(queue)["TaskToken"]
    workflows.sfn.send_task_success(taskToken=token, output="{}")
    workflows.wait_done(execution)
    record = post_step(app, {"taskToken": token})

    response = app.post_json(
        answer_url(record["id"]), {"answer": "FAIL"}, headers=REVIEWER, status=410
    )
    assert "TaskDoesNotExist" in response.json["message"]


# Step Functions failing: 503, nothing lost.


def test_failed_answer_keeps_the_token_and_a_retry_succeeds(
    app, collection, waiting, workflows, emulator
):
    activity, execution = waiting()
    record = post_step(app, {"activityArn": activity})
    url = answer_url(record["id"])
    # More failures than boto3's standard retry mode attempts.
    emulator.inject_fault("SendTaskSuccess", code="ServiceUnavailable", status=503, count=3)

    response = app.post_json(url, {"answer": "SUCCEED"}, headers=REVIEWER, status=503)

    assert response.json["errno"] == 201
    assert int(response.headers["Retry-After"]) > 0
    stored = app.get(f"{collection}/records/{record['id']}", headers=ADMIN).json["data"]
    assert stored.get("status", "UNANSWERED") == "UNANSWERED"
    assert stored["taskToken"] == TOKEN_MASK
    assert workflows.status(execution) == "RUNNING"

    emulator.reset_calls()
    retried = app.post_json(url, {"answer": "SUCCEED"}, headers=REVIEWER)

    assert retried.json["data"]["status"] == "SUCCEED"
    assert emulator.calls == ["SendTaskSuccess"]  # the stored token, no second GetActivityTask
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_throttling_is_a_503(app, collection, waiting, emulator):
    activity, _ = waiting()
    record = post_step(app, {"activityArn": activity})
    emulator.inject_fault("GetActivityTask", code="ThrottlingException", status=400, count=3)

    response = app.post_json(
        answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=503
    )

    assert "ThrottlingException" in response.json["message"]
    assert "Retry-After" in response.headers


def test_unreachable_step_functions_is_a_503(app_factory, backend):
    app = app_factory(
        **{
            "stepfunction.aws_endpoint_url": "http://127.0.0.1:9",
            "stepfunction.collections": "b/c",
        }
    )
    app.put_json("/buckets/b", {}, headers=ADMIN)
    app.put_json("/buckets/b/collections/c", {}, headers=ADMIN)
    post_step(app, {"taskToken": "x" * 40}, record_id="r", collection="/buckets/b/collections/c")

    response = app.post_json(
        "/buckets/b/collections/c/records/r/stepfunction",
        {"answer": "SUCCEED"},
        headers=REVIEWER,
        status=503,
    )

    assert response.json["errno"] == 201
    assert "Retry-After" in response.headers


def test_refused_token_commit_still_answers_with_the_token(
    app_factory, waiting, workflows, monkeypatch
):
    """A listener refuses the commit of a fetched token: the token in hand still answers."""
    app = app_factory(includes="stepfunction kinto.plugins.history tests.failing_listener")
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {}, headers=ADMIN)
    activity, execution = waiting()
    record = post_step(app, {"activityArn": activity})
    monkeypatch.setitem(failing_listener.refusals, "left", 1)

    response = app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)

    assert response.json["data"]["status"] == "SUCCEED"
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


@pytest.mark.parametrize("backend", ["postgresql"])  # the memory backend can't roll back
@pytest.mark.parametrize("with_execution", [True, False], ids=["execution-arn", "no-execution"])
def test_refused_answer_write_is_settled_by_the_next_answer(
    app_factory, callback, workflows, monkeypatch, with_execution
):
    """Step Functions accepted the answer, then a listener refused its write: the record
    stays UNANSWERED, and the next answer records the accepted one, never TIMED_OUT."""
    app = app_factory(includes="stepfunction kinto.plugins.history tests.failing_listener")
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {}, headers=ADMIN)
    token, execution = callback()
    data = {"taskToken": token, **({"executionArn": execution} if with_execution else {})}
    record = post_step(app, data)
    monkeypatch.setitem(failing_listener.refusals, "left", 1)

    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=500)

    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    stored = app.get(f"{STEPS}/records/{record['id']}", headers=ADMIN).json["data"]
    assert stored.get("status", "UNANSWERED") == "UNANSWERED"

    # The answer Step Functions accepted is recorded by the next POST, without a guess.
    again = app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    assert again.json["data"]["status"] == "SUCCEED"
    assert again.json["data"]["answer"]["by"] == user_id(app, REVIEWER)
    app.post_json(answer_url(record["id"]), {"answer": "FAIL"}, headers=REVIEWER, status=409)
