"""Finding 1 of issue 13: a task token carried inside the data a record describes (a callback
payload passing ``"taskToken.$": "$$.Task.Token"``, an author's ``input``) is masked
wherever it occurs, in every response, mail, page, history entry and log line; records
stored by earlier versions are cleaned by ``stepfunction-worker --scrub-tokens``."""

import json
import subprocess

import pytest
import transaction

from stepfunction import records
from stepfunction.schema import TOKEN_MASK
from stepfunction.scrub import holds, scrub
from stepfunction.testing.mailbox import links_of, text_of
from stepfunction.worker.scrub_stored import scrub_stored
from stepfunction.worker.tasks import Task, parse_input, step_for, task_fields
from tests.conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    answer_url,
    mail_settings,
    permissions_of,
    post_step,
    stored_token,
    user_id,
    wait_for,
)
from tests.test_worker import WORKER_BIN, write_ini


TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAa1b2c3d4e5f6-tok"
ACTIVITY = "arn:aws:states:us-west-2:123456789012:activity:Review"
ALICE = "alice@example.com"


# --- The pure function ----------------------------------------------------------------------


def test_scrub_masks_the_token_at_any_depth_in_values_and_keys():
    value = {
        "taskToken": TOKEN,
        "a": [1, None, True, {"b": {"c": [TOKEN, f"resume with {TOKEN} please"]}}],
        TOKEN: {"key": "is the token"},
        f"x-{TOKEN}": 2,
        "other": "unrelated",
    }
    scrubbed = scrub(value, [TOKEN])
    assert TOKEN not in json.dumps(scrubbed)
    assert scrubbed == {
        "taskToken": TOKEN_MASK,
        "a": [1, None, True, {"b": {"c": [TOKEN_MASK, f"resume with {TOKEN_MASK} please"]}}],
        TOKEN_MASK: {"key": "is the token"},
        f"x-{TOKEN_MASK}": 2,
        "other": "unrelated",
    }
    assert TOKEN in json.dumps(value), "the value given is left as it is"
    assert scrub(scrubbed, [TOKEN]) == scrubbed
    assert holds(value, [TOKEN]) and not holds(scrubbed, [TOKEN])


def test_scrub_handles_depth_and_no_token():
    deep = TOKEN
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = [{"d": deep}]
    scrubbed = scrub(deep, [TOKEN])
    for _ in range(5000):
        scrubbed = scrubbed[0]["d"]
    assert scrubbed == TOKEN_MASK
    value = {"a": [TOKEN]}
    assert scrub(value, []) is value and scrub(value, [None, TOKEN_MASK, ""]) is value


def test_scrub_masks_a_short_token_only_where_it_is_a_whole_string():
    """A short token (none of AWS's is) is not masked inside other text, and masking stays
    idempotent even when the token is part of the mask."""
    assert scrub({"a": "stored", "b": "(stored) is stored"}, ["stored"]) == {
        "a": TOKEN_MASK,
        "b": "(stored) is stored",
    }


def test_a_callback_payload_carrying_its_token_makes_a_record_without_it():
    task = Task(TOKEN, None, "https://sqs.us-west-2.amazonaws.com/1/q", region="us-west-2")
    parsed = {
        "data": {"subject": f"token {TOKEN}", "taskToken": TOKEN, "deep": [{"t": TOKEN}]},
        "permissions": {"write": [f"portier:{TOKEN}"]},
        "note": TOKEN,
    }
    step = step_for(task, parsed)
    assert TOKEN not in json.dumps(step)
    assert step.data["input"]["note"] == TOKEN_MASK
    assert step.data["subject"] == f"token {TOKEN_MASK}"
    assert TOKEN not in json.dumps(task_fields(task, parsed))


def test_an_activity_task_input_carrying_its_token_makes_a_record_without_it():
    """Step Functions gives ``$$.Task.Token`` to callback states only (the emulator fails an
    activity state that asks for it, as AWS does); the worker masks it there all the same."""
    raw = json.dumps({"subject": "s", "nested": {"again": f"token={TOKEN}"}})
    task = Task(TOKEN, raw, ACTIVITY, ACTIVITY, "us-west-2")
    step = step_for(task, parse_input(task.input))
    assert step.data["input"]["nested"]["again"] == f"token={TOKEN_MASK}"
    assert TOKEN not in json.dumps(step)


# --- Through the worker, the guard and every reader -----------------------------------------


def logs(caplog):
    """Every log line at INFO, the plugin's and Kinto's at DEBUG (botocore's DEBUG shows
    request bodies: the README says to leave it above DEBUG)."""
    caplog.set_level("INFO")
    for name in ("stepfunction", "kinto"):
        caplog.set_level("DEBUG", logger=name)


def setup_steps(app):
    """The steps collection, read by the reviewer; returns the reviewer's principal."""
    reviewer = user_id(app, REVIEWER)
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {"permissions": {"read": [reviewer]}}, headers=ADMIN)
    return reviewer


def carrying_payload(reviewer):
    """A record body that carries the step's token under several keys and depths."""
    return {
        "data": {
            "subject": "Pay invoice 42",
            "reviewer": [ALICE],
            "executionArn.$": "$$.Execution.Id",
            "taskToken.$": "$$.Task.Token",
            "deep": {"list.$": "States.Array(1, $$.Task.Token)"},
            "sentence.$": "States.Format('resume with {} please', $$.Task.Token)",
        },
        "permissions": {"write": [reviewer]},
        "echo.$": "$$.Task.Token",
    }


def callback_carrying_its_token(workflows, queue, reviewer):
    """A ``.waitForTaskToken`` state whose SQS payload also carries its token (as the
    README's callback example passes ``taskToken.$``); returns its execution."""
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {
            "QueueUrl": queue,
            "MessageBody": {"TaskToken.$": "$$.Task.Token", "Payload": carrying_payload(reviewer)},
        },
        "TimeoutSeconds": 300,
    }
    return workflows.start(workflows.machine(state), {})


def the_only_record(app):
    found = wait_for(lambda: app.get(f"{STEPS}/records", headers=ADMIN).json["data"])
    assert len(found) == 1
    return found[0]


def everything_readers_get(app, record_id):
    """What every read path answers about the step, as text."""
    record = f"{STEPS}/records/{record_id}"
    batch = {"requests": [{"method": "GET", "path": record}, {"method": "GET", "path": STEPS}]}
    batch["requests"].append({"method": "GET", "path": f"{STEPS}/records"})
    texts = [
        app.get(record, headers=ADMIN).text,
        app.get(record, headers=REVIEWER).text,
        app.get(f"{STEPS}/records", headers=REVIEWER).text,
        app.get(f"{STEPS}/stepfunction/inbox", headers=REVIEWER).text,
        app.post_json("/batch", batch, headers=REVIEWER).text,
        app.get("/buckets/stepfunction/history", headers=ADMIN).text,
    ]
    return "\n".join(texts)


def test_a_task_token_is_served_to_no_reader(
    app_factory, mailbox, workflows, start_worker, caplog
):
    """Finding 1: the token in a callback payload's data reached readers, history, the mail
    and the link page."""
    logs(caplog)
    queue = workflows.queue()
    app = app_factory(**mail_settings(mailbox, **{"stepfunction.queues": queue}))
    reviewer = setup_steps(app)
    execution = callback_carrying_its_token(workflows, queue, reviewer)
    start_worker(app)
    record = the_only_record(app)
    token = stored_token(app, record["id"])
    assert token and token not in json.dumps(record)
    data = app.get(f"{STEPS}/records/{record['id']}", headers=ADMIN).json["data"]
    assert data["input"]["data"]["taskToken"] == TOKEN_MASK  # it was there, it is masked
    assert data["input"]["data"]["sentence"] == f"resume with {TOKEN_MASK} please"
    assert data["input"]["echo"] == TOKEN_MASK and data["deep"]["list"] == [1, TOKEN_MASK]

    (message,) = mailbox.wait(1, ALICE)
    mail = text_of(message)
    assert "Pay invoice 42" in mail and TOKEN_MASK in mail
    page = app.get(links_of(message)["Approve"].split("/v1", 1)[1])
    assert "Approve this step?" in page.text and TOKEN_MASK in page.text
    acl = permissions_of(app, record["id"])

    answered = app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)

    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    assert answered.json["data"]["status"] == "SUCCEED"
    assert permissions_of(app, record["id"]) == acl
    for text in (mail, str(message), page.text, answered.text):
        assert token not in text
    assert token not in everything_readers_get(app, record["id"])
    assert token not in caplog.text


def test_an_author_posting_the_token_in_other_fields_shows_it_nowhere(
    app, callback, workflows, caplog
):
    """The guard masked ``data.taskToken`` alone: the same token in ``input``, in a key, in a
    longer text, in a JSON-Patch value or in a batch was stored as given."""
    logs(caplog)
    setup_steps(app)
    token, execution = callback()
    record = post_step(
        app,
        {
            "subject": f"Resume {token} please",
            "taskToken": token,
            "input": {"taskToken": token, "deep": [{"t": token}], token: "as a key"},
        },
    )
    assert token not in json.dumps(record)
    assert record["input"] == {
        "taskToken": TOKEN_MASK,
        "deep": [{"t": TOKEN_MASK}],
        TOKEN_MASK: "as a key",
    }
    assert stored_token(app, record["id"]) == token
    uri = f"{STEPS}/records/{record['id']}"
    acl = permissions_of(app, record["id"])

    responses = [
        # The stored token, in later writes of every kind, by the author and the reviewer.
        app.patch_json(uri, {"data": {"note": f"<{token}>"}}, headers=ADMIN),
        app.patch_json(uri, {"data": {"seen": [token]}}, headers=REVIEWER),
        app.patch(
            uri,
            json.dumps([{"op": "add", "path": "/data/patched", "value": {"v": token}}]),
            headers={**ADMIN, "Content-Type": "application/json-patch+json"},
        ),
        app.patch(
            uri,
            json.dumps({"data": {"merged": {token: token}}}),
            headers={**ADMIN, "Content-Type": "application/merge-patch+json"},
        ),
    ]
    assert permissions_of(app, record["id"]) == acl
    # A batch that gives a new step its token, and the same token elsewhere at once.
    other_token, other_execution = callback()
    other = f"{STEPS}/records/other"
    batch = {
        "requests": [
            {"method": "PUT", "path": other, "body": {"data": {"taskToken": other_token}}},
            {"method": "PATCH", "path": other, "body": {"data": {"input": [other_token]}}},
        ]
    }
    responses.append(app.post_json("/batch", batch, headers=ADMIN))
    assert [r["status"] for r in responses[-1].json["responses"]] == [201, 200]
    stored = app.get(uri, headers=ADMIN).json["data"]
    assert stored["note"] == f"<{TOKEN_MASK}>" and stored["seen"] == [TOKEN_MASK]
    assert stored["patched"] == {"v": TOKEN_MASK}
    assert stored["merged"] == {TOKEN_MASK: TOKEN_MASK}
    assert app.get(other, headers=ADMIN).json["data"]["input"] == [TOKEN_MASK]

    answered = app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    other_answered = app.post_json(answer_url("other"), {"answer": "SUCCEED"}, headers=ADMIN)

    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    assert workflows.wait_done(other_execution)["status"] == "SUCCEEDED"
    assert permissions_of(app, record["id"]) == acl
    seen = [r.text for r in [*responses, answered, other_answered]]
    seen += [everything_readers_get(app, record["id"]), caplog.text]
    for text in seen:
        assert token not in text and other_token not in text


def test_a_record_posted_with_the_token_before_it_was_one_loses_it_when_attached(
    app_factory, workflows, callback, start_worker, caplog
):
    """A record posted first (a Lambda, as in the seed flow) may hold the token in a field
    before anyone said it is one; the worker attaching that task to it masks it there."""
    logs(caplog)
    token, execution = callback()
    queue = workflows.queue()
    app = app_factory(**{"stepfunction.queues": queue})
    setup_steps(app)
    post_step(
        app,
        {"subject": "first", "note": [f"<{token}>"], "activityArn": ACTIVITY},
        record_id="early",
    )
    acl = permissions_of(app, "early")
    body = {"TaskToken": token, "Payload": {"data": {"id": "early"}}}
    workflows.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    start_worker(app)

    wait_for(lambda: stored_token(app, "early") == token, message="the task attached")
    record = app.get(f"{STEPS}/records/early", headers=ADMIN).json["data"]
    assert record["note"] == [f"<{TOKEN_MASK}>"] and record["subject"] == "first"
    assert permissions_of(app, "early") == acl
    app.post_json(answer_url("early"), {"answer": "SUCCEED"}, headers=REVIEWER)
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    history = app.get("/buckets/stepfunction/history", headers=ADMIN).json["data"]
    assert token not in json.dumps(history[0]) + caplog.text


# --- Records stored by earlier versions -----------------------------------------------------


def store_the_old_way(app, record_id, data, token=None):
    """A record as an earlier version left it: written straight to storage, with the history
    entry Kinto's history plugin made of it then; ``token`` kept apart if given."""
    registry = app.app.registry
    uri = f"{STEPS}/records/{record_id}"
    permissions = {"write": [user_id(app, REVIEWER)]}
    with transaction.manager:
        stored = registry.storage.create(
            resource_name="record", parent_id=STEPS, obj={**data, "id": record_id}
        )
        registry.permission.replace_object_permissions(uri, permissions)
        if token:
            records.put_task(_Bare(registry), uri, token)
        registry.storage.create(
            resource_name="history",
            parent_id="/buckets/stepfunction",
            obj={
                "action": "create",
                "resource_name": "record",
                "uri": uri,
                "collection_id": "manual_steps",
                "record_id": record_id,
                "user_id": "account:admin",
                "date": "2025-01-01T00:00:00+00:00",
                "target": {"data": stored, "permissions": permissions},
            },
        )


class _Bare:
    def __init__(self, registry):
        self.registry = registry


def test_scrub_tokens_cleans_records_stored_by_earlier_versions(app, callback, workflows):
    setup_steps(app)
    raw, raw_execution = callback()  # before the mask: the token in data.taskToken
    store_the_old_way(app, "raw", {"subject": "raw", "taskToken": raw, "input": {"t": f"[{raw}]"}})
    kept, kept_execution = callback()  # the worker kept its payload, token inside, as input
    store_the_old_way(
        app,
        "kept",
        {"subject": "kept", "taskToken": TOKEN_MASK, "input": {"data": {"taskToken": kept}}},
        token=kept,
    )
    store_the_old_way(app, "clean", {"subject": "clean", "taskToken": TOKEN_MASK})
    acls = {r: permissions_of(app, r) for r in ("raw", "kept", "clean")}
    assert raw in everything_readers_get(app, "raw") and kept in everything_readers_get(
        app, "kept"
    )

    counts = scrub_stored(app.app.registry, page=2)

    assert counts == {"records": 2, "history": 2, "failed": 0}
    for record_id in ("raw", "kept", "clean"):
        text = everything_readers_get(app, record_id)
        assert raw not in text and kept not in text
        assert permissions_of(app, record_id) == acls[record_id]
    assert app.get(f"{STEPS}/records/raw", headers=ADMIN).json["data"]["input"] == {
        "t": f"[{TOKEN_MASK}]"
    }
    assert stored_token(app, "raw") == raw and stored_token(app, "kept") == kept
    assert scrub_stored(app.app.registry) == {"records": 0, "history": 0, "failed": 0}

    for record_id in ("raw", "kept"):
        app.post_json(answer_url(record_id), {"answer": "SUCCEED"}, headers=REVIEWER)
    assert workflows.wait_done(raw_execution)["status"] == "SUCCEEDED"
    assert workflows.wait_done(kept_execution)["status"] == "SUCCEEDED"


@pytest.mark.parametrize("backend", ["postgresql"])
def test_scrub_tokens_command(app, callback, emulator, tmp_path):
    setup_steps(app)
    token, _ = callback()
    store_the_old_way(app, "old", {"subject": "old", "taskToken": token, "input": [token]})
    ini = write_ini(tmp_path / "kinto.ini", emulator)

    result = subprocess.run(
        [WORKER_BIN, "--scrub-tokens", str(ini)], capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert "task tokens masked in 1 record(s) and 1 history entries" in result.stderr
    assert token not in result.stdout + result.stderr
    assert token not in everything_readers_get(app, "old")
    assert stored_token(app, "old") == token


def test_reading_the_inbox_writes_nothing(app):
    """The inbox masked ``taskToken`` in the memory backend's own objects: a GET rewrote the
    stored record (and hid an old record's token from ``--scrub-tokens``)."""
    setup_steps(app)
    store_the_old_way(app, "old", {"subject": "old", "taskToken": TOKEN})
    inbox = app.get(f"{STEPS}/stepfunction/inbox", headers=ADMIN).json["data"]
    assert inbox[0]["taskToken"] == TOKEN_MASK
    stored = app.app.registry.storage.get(resource_name="record", parent_id=STEPS, object_id="old")
    assert stored["taskToken"] == TOKEN
