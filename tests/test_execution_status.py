"""Executions followed (issue 14): status-change events from the local Step Functions update
execution records and close the steps of ended executions; reconciliation repairs what an
event missed; duplicated, reordered and malformed events change nothing they shouldn't."""

import datetime
import json
import logging
import uuid

import pytest

from stepfunction import records, transactions
from stepfunction.schema import CLOSED
from stepfunction.status_events import Status, changes, from_description, iso, parse_event
from stepfunction.testing.mailbox import links_of
from stepfunction.testing.workflows import callback_step
from stepfunction.worker.tasks import Task, parse_input, parse_message, step_for

from .conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    STRANGER,
    answer_url,
    mail_settings,
    notice_of,
    permissions_of,
    user_id,
    wait_for,
)
from .test_worker import WorkerProcess, write_ini


EXECUTIONS = "/buckets/stepfunction/collections/executions"
INBOX = STEPS + "/stepfunction/inbox"
ACCOUNT = "123456789012"
MACHINE = f"arn:aws:states:us-west-2:{ACCOUNT}:stateMachine:Review"
SECRET = "AKIAVERYSECRETVALUE0"


def execution_arn(name, machine="Review"):
    return f"arn:aws:states:us-west-2:{ACCOUNT}:execution:{machine}:{name}"


def event(arn, status, start=1_700_000_000_000, stop=None, **detail):
    """An EventBridge status-change event, as AWS sends it (its body, as JSON text)."""
    ended = status != "RUNNING"
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": ACCOUNT,
            "time": "2026-11-29T12:00:00Z",
            "region": "us-west-2",
            "resources": [arn],
            "detail": {
                "executionArn": arn,
                "stateMachineArn": MACHINE,
                "name": arn.rsplit(":", 1)[1],
                "status": status,
                "startDate": start,
                "stopDate": (stop or start + 1000) if ended else None,
                "input": "{}",
                "output": None,
                "error": None,
                "cause": None,
                **detail,
            },
        }
    )


# --- The pure functions ---------------------------------------------------------------------


def test_parse_event_reads_what_aws_sends():
    arn = execution_arn("e1")
    body = event(arn, "SUCCEEDED", output='{"ok": 1}', error=None)
    status = parse_event(body)
    assert status.execution_arn == arn and status.name == "e1"
    assert status.status == "SUCCEEDED" and status.output == {"ok": 1}
    assert status.start_date == "2023-11-14T22:13:20.000+00:00"
    assert status.stop_date == "2023-11-14T22:13:21.000+00:00"
    running = parse_event(event(arn, "RUNNING"))
    assert running.stop_date is None and running.output is None


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"source": "aws.states"}),
        event(execution_arn("e1"), "RUNNING").replace("aws.states", "aws.s3"),
        event(execution_arn("e1"), "DANCING"),
        event("arn:aws:states:us-west-2:123456789012:stateMachine:Review", "RUNNING"),
        event(execution_arn("e1"), "RUNNING", name="e2"),  # the name is the ARN's
        event(execution_arn("e1"), "FAILED", startDate="yesterday"),
        event(execution_arn("e1"), "FAILED", detail=None).replace('"detail": {', '"x": {'),
    ],
)
def test_parse_event_refuses_what_is_not_a_status_change(body):
    assert parse_event(body) is None


def test_the_worker_reads_the_execution_beside_the_record():
    arn = execution_arn("e1")
    # An activity task's input, as ``"Parameters": {"data.$": "$", "executionArn.$": …}``.
    task = Task("token-1", json.dumps({"data": {"subject": "s"}, "executionArn": arn}), "q")
    assert step_for(task, parse_input(task.input)).data["executionArn"] == arn
    # A callback message, with the ARN beside its TaskToken and Payload.
    body = {"TaskToken": "token-2", "executionArn": arn, "Payload": {"data": {"subject": "s"}}}
    token, payload = parse_message({"Body": json.dumps(body)})
    assert step_for(Task(token, payload, "q"), payload).data["executionArn"] == arn
    # The record's own executionArn wins.
    own = {"data": {"executionArn": execution_arn("e2")}, "executionArn": arn}
    assert step_for(Task("token-3", own, "q"), own).data["executionArn"] == execution_arn("e2")


def status(state, start="2026-01-01T00:00:00Z", stop=None, **fields):
    stop = stop or ("2026-01-01T00:01:00Z" if state != "RUNNING" else None)
    return Status(execution_arn("e1"), "e1", state, iso(start), iso(stop), **fields)


def test_changes_an_end_beats_running_and_duplicates_change_nothing():
    record = {"status": "RUNNING", "startDate": "2026-01-01T00:00:00.000Z"}
    ended = changes(record, status("FAILED", error="E", cause="C"))
    assert ended == {
        "status": "FAILED",
        "stopDate": "2026-01-01T00:01:00.000+00:00",
        "error": "E",
        "cause": "C",
    }
    record.update(ended)
    assert changes(record, status("FAILED", error="E", cause="C")) == {}  # a duplicate
    assert changes(record, status("RUNNING")) == {}  # older: never back to RUNNING
    assert changes(record, status("SUCCEEDED", stop="2026-01-01T00:00:30Z")) == {}  # earlier
    assert changes(record, status("ABORTED", stop="2026-01-01T00:02:00Z"))["status"] == "ABORTED"
    # The same instant written another way is no change.
    assert (
        changes({"status": "RUNNING", "startDate": "2026-01-01T00:00:00+00:00"}, status("RUNNING"))
        == {}
    )
    assert changes({}, status("RUNNING")) == {
        "status": "RUNNING",
        "startDate": "2026-01-01T00:00:00.000+00:00",
    }


def test_from_description_reads_describe_execution():
    described = {
        "executionArn": execution_arn("e1"),
        "name": "e1",
        "status": "TIMED_OUT",
        "startDate": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        "stopDate": datetime.datetime(2026, 1, 1, 0, 1, tzinfo=datetime.UTC),
    }
    assert from_description(described) == status("TIMED_OUT")
    assert from_description({"status": "RUNNING"}) is None


# --- Against the local Step Functions -------------------------------------------------------


class Following:
    """A Kinto app following the status queue, its worker, and helpers."""

    def __init__(self, app, workflows, status_queue, steps_queue):
        self.app = app
        self.workflows = workflows
        self.status_queue = status_queue
        self.steps_queue = steps_queue
        self.reviewer = user_id(app, REVIEWER)

    def record(self, name, collection=EXECUTIONS):
        response = self.app.get(f"{collection}/records/{name}", headers=ADMIN, status="*")
        return response.json["data"] if response.status_code == 200 else None

    def create_execution_record(self, arn, described=None, **fields):
        """The execution record as the plugin writes it when it starts an execution."""
        name = arn.rsplit(":", 1)[1]
        start = iso(described["startDate"]) if described else iso("2023-11-14T22:13:20Z")
        body = {
            "data": {
                "stateMachineArn": MACHINE,
                "input": {},
                "executionArn": arn,
                "status": "RUNNING",
                "startDate": start,
                **fields,
            },
            "permissions": {"write": [self.reviewer]},
        }
        transactions.commit(
            self.app.app.registry,
            lambda request: records.write_record(
                request, "stepfunction", "executions", name, body, create=True
            ),
        )
        return name

    def start(self, reviewer, task_timeout=300, timeout=None):
        """An execution whose callback step (with its executionArn) the worker stores."""
        machine = self.workflows.machine(
            callback_step(self.steps_queue, task_timeout, execution=True), timeout=timeout
        )
        payload = {
            "data": {"subject": f"Review for {reviewer}", "reviewer": reviewer},
            "permissions": {"write": [self.reviewer]},
        }
        # Started through Kinto: a record in the executions collection.
        body = {"data": {"stateMachineArn": machine, "input": payload}}
        return self.app.post_json(f"{EXECUTIONS}/records", body, headers=ADMIN).json["data"][
            "executionArn"
        ]

    def step_of(self, arn):
        def found():  # read from storage: a list while the worker writes may be refused
            steps = self.app.app.registry.storage.list_all(resource_name="record", parent_id=STEPS)
            return next((s for s in steps if s.get("executionArn") == arn), None)

        return wait_for(found, 30, f"the step of {arn}")

    def send(self, *bodies):
        for body in bodies:
            self.workflows.sqs.send_message(QueueUrl=self.status_queue, MessageBody=body)

    def drained(self):
        attributes = self.workflows.sqs.get_queue_attributes(
            QueueUrl=self.status_queue,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return not any(int(v) for v in attributes.values())

    def history(self, name):
        uri = f"{EXECUTIONS}/records/{name}"
        return self.app.get(f"/buckets/stepfunction/history?uri={uri}", headers=ADMIN).json["data"]


@pytest.fixture
def following(app_factory, workflows, emulator, start_worker, mailbox):
    """``following(events=True, **settings)``: an app whose worker reads the status queue
    (the local Step Functions sends it its events unless ``events`` is false)."""

    def make(events=True, **settings):
        status_queue = workflows.queue()
        steps_queue = workflows.queue()
        if events:
            emulator.set_status_queues([status_queue])
        app = app_factory(
            **mail_settings(mailbox),
            **{
                "stepfunction.status_queues": status_queue,
                "stepfunction.queues": steps_queue,
                "stepfunction.reconcile_seconds": "0",
                "stepfunction.state_machines": "arn:aws:states:us-west-2:*:stateMachine:*",
                **settings,
            },
        )
        reviewer = user_id(app, REVIEWER)
        app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
        for collection in (STEPS, EXECUTIONS):
            app.put_json(collection, {"permissions": {"read": [reviewer]}}, headers=ADMIN)
        start_worker(app)
        return Following(app, workflows, status_queue, steps_queue)

    return make


def test_events_update_execution_records_and_close_steps(following, mailbox, workflows):
    f = following(**{"stepfunction.remind_every": "0.5"})
    answered = f.start("ok@example.com")
    failing = f.start("fail@example.com", task_timeout=4)
    timing_out = f.start("late@example.com", timeout=4)
    aborted = f.start("stop@example.com", task_timeout=10)
    steps = {arn: f.step_of(arn) for arn in (answered, failing, timing_out, aborted)}
    links = {a: links_of(mailbox.wait(1, a)[0]) for a in ("fail@example.com", "late@example.com")}
    acls = {arn: permissions_of(f.app, step["id"]) for arn, step in steps.items()}
    for arn in (failing, timing_out):
        assert workflows.status(arn) == "RUNNING", "the step must be stored before the end"

    # Answered: the execution SUCCEEDED; its step keeps its answer.
    f.app.post_json(answer_url(steps[answered]["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    name = answered.rsplit(":", 1)[1]
    record = wait_for(lambda: (r := f.record(name))["status"] == "SUCCEEDED" and r, 30)
    described = workflows.wait_done(answered)
    assert record["output"] == json.loads(described["output"])
    assert record["stopDate"] == iso(described["stopDate"])
    assert f.record(steps[answered]["id"], STEPS)["status"] == "SUCCEED"

    # Stopped through Kinto (StopExecution): its event closes the step.
    stop = {"error": "Cancelled", "cause": "Not needed"}
    stop_url = f"{EXECUTIONS}/records/{aborted.rsplit(':', 1)[1]}/stepfunction/stop"
    assert f.app.post_json(stop_url, stop, headers=ADMIN).json["data"]["status"] == "ABORTED"

    expected = {failing: "FAILED", timing_out: "TIMED_OUT", aborted: "ABORTED"}
    for arn, how in expected.items():
        name = arn.rsplit(":", 1)[1]
        record = wait_for(lambda n=name, h=how: (r := f.record(n))["status"] == h and r, 30, how)
        assert record["stopDate"] == iso(workflows.wait_done(arn)["stopDate"])
        step = wait_for(
            lambda s=steps[arn]: (r := f.record(s["id"], STEPS))["status"] == CLOSED and r, 30
        )
        assert step["closed"]["executionStatus"] == how
        assert step["closed"]["at"] == record["stopDate"]
        assert permissions_of(f.app, step["id"]) == acls[arn]
        # Its answer endpoint says why, and sends nothing.
        workflows.emulator.reset_calls()
        response = f.app.post_json(
            answer_url(step["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=410
        )
        assert (
            how in response.json["message"]
            and "closed with its execution" in response.json["message"]
        )
        assert workflows.emulator.calls == []
        # It leaves the inbox; its notice is closed: no more reminders.
        assert step["id"] not in [s["id"] for s in f.app.get(INBOX, headers=REVIEWER).json["data"]]
        assert notice_of(f.app, step["id"])["closed"] is True
    assert f.record(failing.rsplit(":", 1)[1])["error"] == "States.Timeout"
    assert f.record(aborted.rsplit(":", 1)[1])["cause"] == "Not needed"
    for address, mailed in links.items():
        page = f.app.get(mailed["Approve"].split("/v1", 1)[1], status=410)
        assert "This step is closed" in page.text
        assert len(mailbox.to(address)) == len(mailbox.wait(1, address))
    # Others may not write the plugin's fields.
    step_id = steps[failing]["id"]
    for field, value in (("closed", None), ("status", "UNANSWERED")):
        f.app.patch_json(
            f"{STEPS}/records/{step_id}", {"data": {field: value}}, headers=ADMIN, status=403
        )
    f.app.post_json(answer_url(step_id), {"answer": "SUCCEED"}, headers=STRANGER, status=403)


def test_a_dropped_event_is_repaired_by_reconciliation(following, workflows):
    f = following(events=False, **{"stepfunction.reconcile_seconds": "0.5"})
    arn = f.start("drop@example.com", task_timeout=3)
    step = f.step_of(arn)
    assert workflows.wait_done(arn)["status"] == "FAILED"
    name = arn.rsplit(":", 1)[1]
    record = wait_for(lambda: (r := f.record(name))["status"] == "FAILED" and r, 30)
    assert record["error"] == "States.Timeout"
    closed = wait_for(lambda: (r := f.record(step["id"], STEPS))["status"] == CLOSED and r, 30)
    assert closed["closed"]["executionStatus"] == "FAILED"
    assert f.drained()


def test_duplicated_and_reordered_events_write_each_change_once(following):
    f = following(events=False)
    arn = execution_arn(f"dup-{uuid.uuid4().hex[:8]}")
    name = f.create_execution_record(arn)
    start = 1_700_000_000_000
    ended = event(arn, "SUCCEEDED", start, start + 5000, output='{"ok": true}')
    # The end, then the RUNNING sent before it, then the end again and again.
    f.send(ended, event(arn, "RUNNING", start), ended, ended)
    f.send(*[ended] * 6)
    wait_for(f.drained, 30, "the queue to drain")
    record = f.record(name)
    assert record["status"] == "SUCCEEDED" and record["output"] == {"ok": True}
    assert record["stopDate"] == iso(start + 5000)
    actions = [h["action"] for h in f.history(name)]
    assert actions == ["update", "create"]  # newest first: one write for one change
    # An earlier end, and another execution's event of the same name: nothing changes.
    f.send(event(arn, "FAILED", start, start + 1000, error="E"))
    f.send(event(execution_arn(name, "Other"), "FAILED", start, start + 9000))
    wait_for(f.drained, 30, "the queue to drain")
    assert f.record(name)["status"] == "SUCCEEDED"
    assert len(f.history(name)) == 2


def test_malformed_events_are_logged_and_deleted(following, caplog):
    caplog.set_level(logging.DEBUG, logger="stepfunction")
    caplog.set_level(logging.DEBUG, logger="kinto")
    f = following(events=False)
    arn = execution_arn(f"bad-{uuid.uuid4().hex[:8]}")
    name = f.create_execution_record(arn)
    f.send(
        f"not json {SECRET}",
        json.dumps({"source": "aws.states", "detail": SECRET}),
        event(arn, "EXPLODED", cause=SECRET),
        event(execution_arn("unknown-to-kinto"), "FAILED", cause=SECRET),
        event(arn, "FAILED", error="Boom", cause=SECRET)[:-5],
    )
    wait_for(f.drained, 30, "the malformed events to be deleted")
    ours = lambda: "\n".join(  # noqa: E731 (botocore's DEBUG lines are every request's body)
        r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("stepfunction", "kinto")
    )
    assert ours().count("not a Step Functions Execution Status Change event: deleted") == 4
    # The worker still follows.
    f.send(event(arn, "FAILED", error="Boom", cause=SECRET))
    wait_for(lambda: f.record(name)["status"] == "FAILED", 30)
    assert f.record(name)["cause"] == SECRET  # the record holds it; the log does not
    assert SECRET not in ours()


def test_an_execution_that_ends_badly_mails_its_notify_addresses(following, mailbox):
    f = following(events=False, **{"stepfunction.mail_ended": "true"})
    start = 1_700_000_000_000
    arns = {
        how: execution_arn(f"{how.lower()}-{uuid.uuid4().hex[:8]}")
        for how in ("FAILED", "SUCCEEDED")
    }
    notify = ["ops@example.com", "not an address", "OPS@example.com", "dev@example.com"]
    for arn in arns.values():
        f.create_execution_record(arn, notify=notify)
    failed = event(arns["FAILED"], "FAILED", start, error="Boom", cause="The\nreason")
    f.send(failed, failed, event(arns["SUCCEEDED"], "SUCCEEDED", start))
    wait_for(f.drained, 30, "the queue to drain")
    (mail,) = mailbox.wait(1, "ops@example.com")
    assert mail["Subject"] == f"Execution {arns['FAILED'].rsplit(':', 1)[1]} ended FAILED"
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Error: Boom" in body and "Cause: The reason" in body
    assert len(mailbox.wait(2)) == 2  # ops (once, whatever its case) and dev
    assert mailbox.to("dev@example.com") and len(mailbox.messages) == 2  # a duplicate: none


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_worker_process_follows_executions(app, workflows, emulator, tmp_path):
    """The CLI worker, a process of its own on PostgreSQL, applies the events."""
    status_queue = workflows.queue()
    emulator.set_status_queues([status_queue])
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(EXECUTIONS, {}, headers=ADMIN)
    ini = write_ini(
        tmp_path / "worker.ini",
        emulator,
        status_queues=status_queue,
        sqs_wait_seconds=1,
        reconcile_seconds=0,
    )
    process = WorkerProcess(ini, tmp_path / "worker.log")
    try:
        process.wait_started()
        f = Following(app, workflows, status_queue, None)
        activity = workflows.activity()
        arn = workflows.start(workflows.activity_machine(activity, timeout=2))
        name = f.create_execution_record(arn, workflows.sfn.describe_execution(executionArn=arn))
        record = wait_for(lambda: (r := f.record(name))["status"] == "FAILED" and r, 30)
        assert record["stopDate"] == iso(workflows.wait_done(arn)["stopDate"])
        assert f.drained()
    finally:
        assert process.terminate() == 0, process.output()
