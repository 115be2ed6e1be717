"""The worker: every pending manual step becomes its own record, against the real emulator."""

import json
import logging
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kinto.core.storage.exceptions import BackendError
from kinto.core.testing import get_user_headers

from stepfunction import records, transactions
from stepfunction.schema import TOKEN_MASK
from stepfunction.worker.tasks import record_id_for

from .conftest import (
    ADMIN,
    REVIEWER,
    STRANGER,
    answer_url,
    backend_settings,
    stored_token,
    user_id,
    wait_for,
)


BUCKET, COLLECTION = "stepfunction", "manual_steps"
COLLECTION_URI = f"/buckets/{BUCKET}/collections/{COLLECTION}"
WORKER_BIN = str(Path(sys.executable).with_name("stepfunction-worker"))


def stored_records(app):
    registry = app.app.registry
    return registry.storage.list_all(resource_name="record", parent_id=COLLECTION_URI)


def stored_permissions(app, record_id):
    perms = app.app.registry.permission.get_object_permissions(
        records.record_uri(BUCKET, COLLECTION, record_id)
    )
    return {k: set(v) for k, v in perms.items() if v}


def review_machine(workflows, activity, **state):
    """A state machine waiting on ``activity``, whose output carries its input."""
    task = {"Type": "Task", "Resource": activity, "TimeoutSeconds": 300, "ResultPath": "$.review"}
    return workflows.machine({**task, **state})


def queued(workflows, queue_url):
    attributes = workflows.sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def fail_record_writes(monkeypatch, app, times, before=None):
    """Make the next ``times`` record creations raise a storage error; returns the calls."""
    storage = app.app.registry.storage
    original = storage.create
    calls = []

    def create(*args, **kwargs):
        if kwargs.get("resource_name") == "record":
            calls.append(before() if before else None)
            if len(calls) <= times:
                raise BackendError(message="injected storage failure")
        return original(*args, **kwargs)

    monkeypatch.setattr(storage, "create", create)
    return calls


def test_three_reviewers_each_resume_their_own_execution(app_factory, workflows, start_worker):
    activity = workflows.activity()
    machine = review_machine(workflows, activity)
    app = app_factory(**{"stepfunction.activities": activity})
    reviewers = {name: get_user_headers(name) for name in ("alice", "bob", "carol")}
    ids = {name: user_id(app, headers) for name, headers in reviewers.items()}
    inputs, executions = {}, {}
    for name in reviewers:
        inputs[name] = {
            "data": {"subject": f"Review the add-on, {name}", "reviewer": name},
            "permissions": {"write": [ids[name]]},
        }
        executions[name] = workflows.start(machine, inputs[name])

    start_worker(app)
    records = wait_for(lambda: len(stored_records(app)) == 3 and stored_records(app), 30, "3")
    by_reviewer = {record["reviewer"]: record for record in records}
    assert set(by_reviewer) == set(reviewers)
    for name, record in by_reviewer.items():
        assert record["status"] == "UNANSWERED"
        assert record["activityArn"] == activity
        assert record["input"] == inputs[name]
        assert record["taskToken"] == TOKEN_MASK
        assert record["id"] == record_id_for(stored_token(app, record["id"]))
        # The input's permissions are the whole ACL: no owner was added for the worker.
        assert stored_permissions(app, record["id"]) == {"write": {ids[name]}}

    # The writes went through Kinto's resources: the collection has its schema, and
    # kinto.plugins.history saw the worker's records.
    collection = app.app.registry.storage.get(
        resource_name="collection", parent_id=f"/buckets/{BUCKET}", object_id=COLLECTION
    )
    assert collection["schema"]["properties"]["status"]["enum"]
    assert "ui:order" in collection["uiSchema"]

    # (History is written right after its record is committed, in a transaction of its own.)
    def history():
        return app.app.registry.storage.list_all(
            resource_name="history", parent_id=f"/buckets/{BUCKET}"
        )

    wait_for(lambda: sum(e["resource_name"] == "record" for e in history()) >= 3, 30, "history")
    created = {e["record_id"] for e in history() if e["resource_name"] == "record"}
    assert created == {record["id"] for record in records}
    assert all(e["action"] == "create" for e in history() if e["resource_name"] == "record")

    for name, record in by_reviewer.items():
        other = next(n for n in reviewers if n != name)
        app.post_json(
            answer_url(record["id"]), {"answer": "SUCCEED"}, headers=reviewers[other], status=403
        )
        app.get(f"{COLLECTION_URI}/records/{record['id']}", headers=reviewers[name])
        app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=reviewers[name])

    for name, execution in executions.items():
        described = workflows.wait_done(execution)
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["output"]) == {
            **inputs[name],
            "review": {"message": "signed off"},
        }


def test_seed_flow_completes_the_record_a_lambda_posted(app_factory, workflows, start_worker):
    activity = workflows.activity()
    machine = review_machine(workflows, activity)
    app = app_factory(**{"stepfunction.activities": activity})
    reviewer = user_id(app, REVIEWER)
    admin = user_id(app, ADMIN)
    app.put_json(f"/buckets/{BUCKET}", {}, headers=ADMIN)
    app.put_json(COLLECTION_URI, {}, headers=ADMIN)
    # What the seed's PostToKinto Lambda posts, and returns as the next states' input.
    posted = app.post_json(
        f"{COLLECTION_URI}/records",
        {
            "data": {
                "subject": "Please review and sign-off (or not) on this addon",
                "stateMachineArn": machine,
                "activityArn": activity,
                "reviewer": "reviewer@example.com",
            },
            "permissions": {"write": [reviewer]},
        },
        headers=ADMIN,
    ).json
    record_id = posted["data"]["id"]
    execution = workflows.start(machine, posted)
    # A task naming a record that does not exist yet: created under that id.
    missing = {"data": {"id": "named-by-the-input", "subject": "Created by the worker"}}
    other_execution = workflows.start(machine, missing)

    start_worker(app)
    wait_for(lambda: len(stored_records(app)) == 2, 30, "the named record")
    record = wait_for(
        lambda: next(
            (r for r in stored_records(app) if r["id"] == record_id and r.get("taskToken")), None
        ),
        10,
        "the token attached",
    )
    assert len(stored_records(app)) == 2  # no duplicate of the posted record.
    assert record["subject"] == posted["data"]["subject"]
    assert record["reviewer"] == "reviewer@example.com"
    assert record["status"] == "UNANSWERED"
    assert record["input"] == posted
    assert record["last_modified"] > posted["data"]["last_modified"]
    assert stored_permissions(app, record_id) == {"write": {reviewer, admin}}

    # The collection the admin made is left as it is.
    assert "schema" not in app.get(COLLECTION_URI, headers=ADMIN).json["data"]
    named = next(r for r in stored_records(app) if r["id"] == "named-by-the-input")
    assert named["subject"] == "Created by the worker" and named["taskToken"] == TOKEN_MASK

    app.post_json(answer_url(record_id), {"answer": "SUCCEED"}, headers=REVIEWER)
    described = workflows.wait_done(execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["review"] == {"message": "signed off"}
    workflows.sfn.stop_execution(executionArn=other_execution)


def test_sqs_callback_message_deleted_only_after_commit(
    app_factory, workflows, start_worker, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="stepfunction")
    queue = workflows.queue()
    machine = workflows.callback_machine(queue)
    app = app_factory(**{"stepfunction.queues": queue})
    reviewer = user_id(app, REVIEWER)
    payload = {
        "data": {"subject": "Sign off, please", "reviewer": "r@example.com"},
        "permissions": {"write": [reviewer]},
    }
    execution = workflows.start(machine, payload)
    # Every record write sees the message still on the queue (received, not deleted), and
    # the first one fails: it is retried.
    calls = fail_record_writes(monkeypatch, app, times=1, before=lambda: queued(workflows, queue))

    start_worker(app)
    wait_for(lambda: stored_records(app), 30, "the record")
    assert calls == [(0, 1), (0, 1)]
    wait_for(lambda: queued(workflows, queue) == (0, 0), 30, "the message deleted")
    (record,) = stored_records(app)
    assert record["input"] == payload
    assert record["status"] == "UNANSWERED" and "activityArn" not in record
    assert stored_permissions(app, record["id"]) == {"write": {reviewer}}

    # A message without a task token is left on the queue (redelivery, then dead letters).
    workflows.sqs.send_message(QueueUrl=queue, MessageBody="not a task")
    wait_for(lambda: "has no TaskToken" in caplog.text, 30, "the malformed message")
    assert sum(queued(workflows, queue)) == 1
    assert len(stored_records(app)) == 1

    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    described = workflows.wait_done(execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"message": "signed off"}


def test_storage_outage_is_retried_until_the_task_is_stored(
    app_factory, workflows, emulator, start_worker, monkeypatch
):
    """A database outage never fails a workflow: the message stays on its queue, the worker
    retries until the record is stored, and only then deletes it."""
    queue = workflows.queue()
    machine = workflows.callback_machine(queue)
    app = app_factory(**{"stepfunction.queues": queue})
    execution = workflows.start(machine, {"subject": "bare object"})
    calls = fail_record_writes(monkeypatch, app, times=8, before=lambda: queued(workflows, queue))

    start_worker(app)
    (record,) = wait_for(lambda: stored_records(app), 30, "the task stored")
    assert len(calls) == 9
    assert all(call == (0, 1) for call in calls)  # the message stayed, invisible, meanwhile
    assert record["subject"] == "bare object"
    wait_for(lambda: queued(workflows, queue) == (0, 0), 30, "the message deleted")
    assert "SendTaskFailure" not in emulator.calls
    assert workflows.status(execution) == "RUNNING"
    workflows.sfn.stop_execution(executionArn=execution)


def test_storage_outage_lasts_until_the_task_times_out(
    app_factory, workflows, emulator, start_worker, monkeypatch, caplog
):
    """The worker gives up only when Step Functions says the task is gone; it never fails
    the execution itself, so no failure cause can name a database host."""
    caplog.set_level(logging.INFO, logger="stepfunction")
    activity = workflows.activity()
    machine = review_machine(workflows, activity, TimeoutSeconds=4)
    app = app_factory(**{"stepfunction.activities": activity})
    fail_record_writes(monkeypatch, app, times=10_000)
    # Polling first: a task not handed out before it times out would never reach the worker.
    start_worker(app)
    wait_for(lambda: "GetActivityTask" in emulator.calls, 30, "the first poll")
    execution = workflows.start(machine, {"data": {"subject": "never stored"}})

    described = workflows.wait_done(execution)
    assert described["status"] == "FAILED"
    assert "ActivityTimedOut" in workflows.history_types(execution)
    wait_for(lambda: "is gone (timed out) before it could be stored" in caplog.text, 30, "log")
    assert "SendTaskFailure" not in emulator.calls
    assert stored_records(app) == []


def test_invalid_task_input_fails_the_execution(app_factory, workflows, start_worker):
    activity = workflows.activity()
    machine = review_machine(workflows, activity)
    app = app_factory(**{"stepfunction.activities": activity})
    execution = workflows.start(machine, {"data": {"id": "not a valid id!"}})

    start_worker(app)
    assert workflows.wait_done(execution)["status"] == "FAILED"
    events = workflows.sfn.get_execution_history(executionArn=execution)["events"]
    failed = next(e for e in events if e["type"] == "ActivityFailed")["activityFailedEventDetails"]
    assert failed["error"] == "stepfunction.InvalidRecord"
    assert "data.id" in failed["cause"]
    assert stored_records(app) == []


def deeply_nested(levels):
    value = "bottom"
    for _ in range(levels):
        value = {"deeper": value}
    return value


@pytest.mark.parametrize(
    "data,named",
    [
        ({"subject": "a\u0000b"}, "NUL"),
        ({"subject": "ok", "details": {"a\u0000": 1}}, "NUL"),
        ({"subject": "ok", "details": deeply_nested(150)}, "deeper than 100"),
    ],
    ids=["nul-in-a-value", "nul-in-a-key", "150-levels"],
)
def test_a_task_input_no_backend_can_store_fails_the_execution_at_once(
    app_factory, workflows, start_worker, data, named
):
    """PostgreSQL's JSONB refuses NUL, Python's tools recurse: such an input is refused with
    SendTaskFailure naming why (the same on both backends), not retried until it times out."""
    activity = workflows.activity()
    machine = review_machine(workflows, activity)
    app = app_factory(**{"stepfunction.activities": activity})
    execution = workflows.start(machine, {"data": data})

    start_worker(app)
    assert workflows.wait_done(execution)["status"] == "FAILED"
    events = workflows.sfn.get_execution_history(executionArn=execution)["events"]
    failed = next(e for e in events if e["type"] == "ActivityFailed")["activityFailedEventDetails"]
    assert failed["error"] == "stepfunction.InvalidRecord"
    assert named in failed["cause"]
    assert stored_records(app) == []


def test_heartbeats_and_timed_out_tasks(app_factory, workflows, emulator, start_worker):
    activity = workflows.activity()
    # One task that times out, one that needs heartbeats to stay alive.
    # Heartbeats every 0.3 s against a 3 s HeartbeatSeconds: a wide margin on a busy machine.
    # "late" must be stored before its 8 s run out (4 s left little margin on a loaded machine).
    timing_out = review_machine(workflows, activity, TimeoutSeconds=8)
    beating = review_machine(workflows, activity, TimeoutSeconds=60, HeartbeatSeconds=3)
    app = app_factory(
        **{"stepfunction.activities": activity, "stepfunction.heartbeat_seconds": "0.3"}
    )
    reviewer = user_id(app, REVIEWER)
    perms = {"write": [reviewer]}
    # Polling before the tasks exist: "late" must be handed out before its 8 s run out.
    worker = start_worker(app)
    wait_for(lambda: "GetActivityTask" in emulator.calls, 30, "the first poll")
    lost = workflows.start(timing_out, {"data": {"subject": "late"}, "permissions": perms})
    kept = workflows.start(beating, {"data": {"subject": "kept"}, "permissions": perms})

    wait_for(lambda: len(stored_records(app)) == 2, 30, "both records")
    wait_for(lambda: "SendTaskHeartbeat" in emulator.calls, 30, "a heartbeat")
    records = wait_for(
        lambda: {r["subject"]: r for r in stored_records(app) if r["status"] == "TIMED_OUT"},
        30,
        "TIMED_OUT",
    )
    assert set(records) == {"late"}
    # The state timed out (States.Timeout), so its execution failed.
    assert workflows.wait_done(lost)["status"] == "FAILED"
    assert "ActivityTimedOut" in workflows.history_types(lost)
    # The other one outlived its HeartbeatSeconds many times over.
    assert workflows.status(kept) == "RUNNING"
    by_subject = {r["subject"]: r for r in stored_records(app)}
    assert by_subject["kept"]["status"] == "UNANSWERED"

    app.post_json(answer_url(by_subject["kept"]["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    assert workflows.wait_done(kept)["status"] == "SUCCEEDED"

    # No poller, no heartbeat: only the answer could call AWS, and it does not.
    worker.stop(timeout=10)
    emulator.reset_calls()
    response = app.post_json(
        answer_url(by_subject["late"]["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=410
    )
    assert "timed out" in response.json["message"]
    assert emulator.calls == []


def test_collection_created_once_never_replaced(app):
    registry = app.app.registry

    def ensure(request):
        return records.ensure_collection(request, BUCKET, COLLECTION)

    assert transactions.commit(registry, ensure) == [f"/buckets/{BUCKET}", COLLECTION_URI]
    transactions.commit(
        registry,
        lambda request: request.registry.storage.update(
            resource_name="collection",
            parent_id=f"/buckets/{BUCKET}",
            object_id=COLLECTION,
            obj={"x": 1},
        ),
    )
    assert transactions.commit(registry, ensure) == []
    stored = registry.storage.get(
        resource_name="collection", parent_id=f"/buckets/{BUCKET}", object_id=COLLECTION
    )
    assert stored["x"] == 1
    # Created with no owner: only the settings' principals can administer them.
    assert app.app.registry.permission.get_object_permissions(COLLECTION_URI) == {}


def test_managed_activity_without_token_answers_409_at_once(app_factory, workflows, emulator):
    activity = workflows.activity()
    app = app_factory(**{"stepfunction.activities": activity})
    reviewer = user_id(app, REVIEWER)
    app.put_json(f"/buckets/{BUCKET}", {}, headers=ADMIN)
    app.put_json(COLLECTION_URI, {}, headers=ADMIN)
    app.put_json(
        f"{COLLECTION_URI}/records/waiting",
        {"data": {"activityArn": activity}, "permissions": {"write": [reviewer]}},
        headers=ADMIN,
    )
    emulator.reset_calls()
    started = time.monotonic()
    response = app.post_json(
        answer_url("waiting"), {"answer": "SUCCEED"}, headers=REVIEWER, status=409
    )
    # At once: no long poll (the emulator's last 1 s; none was made, see the calls below).
    assert time.monotonic() - started < 5
    assert "not yet received" in response.json["message"]
    assert emulator.calls == []
    app.post_json(answer_url("waiting"), {"answer": "SUCCEED"}, headers=STRANGER, status=403)


def test_worker_in_process(app_factory, workflows):
    activity = workflows.activity()
    machine = review_machine(workflows, activity)
    app = app_factory(
        **{"stepfunction.activities": activity, "stepfunction.worker_in_process": "true"}
    )
    worker = app.app.registry.stepfunction_worker
    try:
        reviewer = user_id(app, REVIEWER)
        execution = workflows.start(
            machine, {"data": {"subject": "in process"}, "permissions": {"write": [reviewer]}}
        )
        (record,) = wait_for(lambda: stored_records(app), 30, "the record")
        app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
        assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    finally:
        worker.stop(timeout=10)


# --- The command line ---------------------------------------------------------------------


def write_ini(path, emulator, backend="postgresql", **stepfunction):
    settings = {
        **backend_settings(backend),
        "includes": "stepfunction kinto.plugins.history",
        "multiauth.policies": "basicauth",
        "userid_hmac_secret": "test-secret",
    }
    lines = [f"kinto.{key} = {value}" for key, value in settings.items()]
    step = {
        "aws_access_key": "testing",
        "aws_secret_key": "testing",
        "aws_region": "us-west-2",
        "aws_endpoint_url": emulator.endpoint_url,
        **stepfunction,
    }
    lines += [f"stepfunction.{key} = {value}" for key, value in step.items()]
    path.write_text(
        "[app:main]\nuse = egg:kinto\n"
        + "\n".join(lines)
        + textwrap.dedent(
            """

            [loggers]
            keys = root

            [handlers]
            keys = console

            [formatters]
            keys = generic

            [logger_root]
            level = INFO
            handlers = console

            [handler_console]
            class = StreamHandler
            args = (sys.stderr,)
            formatter = generic

            [formatter_generic]
            format = %(asctime)s %(levelname)s [%(threadName)s] %(name)s %(message)s
            """
        )
    )
    return path


class WorkerProcess:
    def __init__(self, ini, log):
        self.log = log
        self.process = subprocess.Popen(
            [WORKER_BIN, str(ini)], stdout=subprocess.DEVNULL, stderr=log.open("w")
        )

    def output(self):
        return self.log.read_text() if self.log.exists() else ""

    def wait_started(self):
        wait_for(
            lambda: "stepfunction worker started" in self.output() or self.process.poll(),
            30,
            "the worker to start",
        )
        assert self.process.poll() is None, self.output()

    def terminate(self, timeout=20):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def worker_processes(tmp_path):
    processes = []

    def spawn(ini):
        process = WorkerProcess(ini, tmp_path / f"worker-{len(processes)}.log")
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        process.kill()


def run_worker(ini):
    return subprocess.run([WORKER_BIN, str(ini)], capture_output=True, text=True, timeout=60)


def test_worker_refuses_the_memory_backend(tmp_path, emulator):
    ini = write_ini(
        tmp_path / "memory.ini", emulator, backend="memory", activities=ACTIVITY_PLACEHOLDER
    )
    result = run_worker(ini)
    assert result.returncode == 2, result.stderr
    assert "memory" in result.stderr and "stepfunction.worker_in_process = true" in result.stderr


def test_worker_refuses_nothing_to_poll(tmp_path, emulator):
    result = run_worker(write_ini(tmp_path / "idle.ini", emulator))
    assert result.returncode == 2, result.stderr
    assert "stepfunction.activities" in result.stderr


ACTIVITY_PLACEHOLDER = "arn:aws:states:us-west-2:123456789012:activity:Unused"


@pytest.mark.parametrize("backend", ["postgresql"])
def test_sigterm_stores_what_polls_in_flight_bring(
    app_factory, workflows, emulator, tmp_path, worker_processes
):
    activity = workflows.activity()
    machine = review_machine(workflows, activity)
    app = app_factory()
    ini = write_ini(tmp_path / "worker.ini", emulator, activities=activity, pollers_per_activity=2)
    worker = worker_processes(ini)
    worker.wait_started()

    # Both pollers are in a fresh long poll when SIGTERM arrives; the executions start right
    # after, so only the polls already in flight can take their tasks. Polls of 10 s, not the
    # emulator's 1 s: on a loaded machine, 1 s could end before the executions' tasks exist.
    emulator.set_poll_seconds(10)
    try:
        emulator.reset_calls()
        wait_for(lambda: emulator.calls.count("GetActivityTask") >= 2, 30, "polls in flight")
        worker.process.send_signal(signal.SIGTERM)
        executions = [workflows.start(machine, {"data": {"subject": f"s{i}"}}) for i in range(2)]
        assert worker.process.wait(30) == 0, worker.output()
    finally:
        emulator.set_poll_seconds(1)

    started = [
        e for e in executions if "ActivityStarted" in workflows.history_types(e)
    ]  # handed to a poller
    records = stored_records(app)
    assert len(started) >= 1, worker.output()
    assert len(records) == len(started), worker.output()
    # Stored after the signal: by the polls that were in flight when it arrived.
    output = worker.output()
    assert "SIGTERM" in output and output.index("SIGTERM") < output.index("stored in a new")
    assert worker.output().count("stored in a new record") == len(started)
    for execution in executions:
        workflows.sfn.stop_execution(executionArn=execution)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_worker_processes_make_one_record_per_task(
    app_factory, workflows, emulator, tmp_path, worker_processes
):
    activity = workflows.activity()
    queue = workflows.queue()
    machine = review_machine(workflows, activity)
    callback = workflows.callback_machine(queue)
    app = app_factory()
    ini = write_ini(
        tmp_path / "worker.ini",
        emulator,
        activities=activity,
        pollers_per_activity=2,
        queues=queue,
        sqs_wait_seconds=1,
    )
    workers = [worker_processes(ini), worker_processes(ini)]
    for worker in workers:
        worker.wait_started()

    executions = []
    for i in range(5):
        executions.append(workflows.start(machine, {"data": {"subject": f"activity-{i}"}}))
        executions.append(workflows.start(callback, {"data": {"subject": f"callback-{i}"}}))

    wait_for(lambda: len(stored_records(app)) >= 10, 30, "10 records")
    wait_for(lambda: queued(workflows, queue) == (0, 0), 30, "the messages deleted")
    for worker in workers:
        assert worker.terminate() == 0, worker.output()
    records = stored_records(app)
    assert len(records) == 10
    assert sorted(r["subject"] for r in records) == sorted(
        [f"activity-{i}" for i in range(5)] + [f"callback-{i}" for i in range(5)]
    )
    assert len({stored_token(app, r["id"]) for r in records}) == 10
    for execution in executions:
        workflows.sfn.stop_execution(executionArn=execution)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_sigterm_exits_within_stop_seconds_while_a_long_poll_waits(
    app_factory, workflows, emulator, tmp_path, worker_processes
):
    """A GetActivityTask long poll in flight does not hold the exit past stop_seconds."""
    activity = workflows.activity()
    app_factory()
    ini = write_ini(tmp_path / "worker.ini", emulator, activities=activity, stop_seconds=1)
    emulator.set_poll_seconds(30)
    try:
        worker = worker_processes(ini)
        worker.wait_started()
        emulator.reset_calls()
        wait_for(lambda: "GetActivityTask" in emulator.calls, 30, "a long poll in flight")
        signalled = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(20) == 0, worker.output()
        # Well before the 30 s poll could have returned.
        assert time.monotonic() - signalled < 15
        assert "long polls still in flight are left" in worker.output()
    finally:
        emulator.set_poll_seconds(1)


def test_exit_waits_for_a_task_being_stored(app, monkeypatch):
    """After stop_seconds, a task a poll just received is stored before the process exits
    (``wait_settled``), for SETTLE_SECONDS at most."""
    import threading

    from stepfunction.worker.store import Store

    store = Store(app.app.registry, threading.Event())
    entered, release = threading.Event(), threading.Event()
    monkeypatch.setattr(store, "_handle", lambda task: entered.set() or release.wait(60))
    assert store.wait_settled(0)
    handler = threading.Thread(target=store.handle, args=(None,))
    handler.start()
    assert entered.wait(30)  # the task is being stored (not a 50 ms sleep: a loaded machine)
    assert not store.wait_settled(0.1)
    release.set()
    assert store.wait_settled(5)
    handler.join(5)
