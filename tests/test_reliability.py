"""Faults in the middle: PostgreSQL connections killed under the server and the worker, the
local Step Functions stopped and started again, and long runs of tasks."""

import json
import os
import time

import pytest
from kinto.core.storage.exceptions import BackendError
from sqlalchemy import create_engine, text

from stepfunction import transactions
from stepfunction.records import sql_engine
from stepfunction.testing.process import EmulatorProcess
from stepfunction.testing.workflows import Workflows
from tests.conftest import (
    ADMIN,
    POSTGRESQL_URL,
    REVIEWER,
    STEPS,
    answer_url,
    post_step,
    wait_for,
)


# The local SQS (moto) delivers about 15 messages a second from a long queue, against 2 ms
# for the worker to store one: STEPFUNCTION_TEST_TASKS=10000 takes some ten minutes.
TASKS = int(os.environ.get("STEPFUNCTION_TEST_TASKS", 300))
# Activity tasks come faster (about 50 a second here, the local Step Functions being the limit):
# the 10,000 take some three minutes.
ACTIVITY_TASKS = int(os.environ.get("STEPFUNCTION_TEST_ACTIVITY_TASKS", 10_000))
# At most this many executions wait for the worker at once, and each times out some seconds
# after its record is stored: the local Step Functions keeps a thread per waiting execution
# (TimeoutSeconds of 120 kept some 9,000 alive and made the test three times slower).
OUTSTANDING = 100
# A task must be polled within this many seconds: 100 outstanding need 3.3 tasks a second,
# a fifth of what a loaded machine was seen to give.
TASK_TIMEOUT = 30


def kill_connections():
    """pg_terminate_backend on every other connection to the tests' database."""
    engine = create_engine(POSTGRESQL_URL.replace("postgresql://", "postgresql+psycopg2://", 1))
    with engine.connect() as connection:
        killed = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    engine.dispose()
    return killed


def answer_until_done(app, record_id, answer, attempts=5):
    """As a client must: again after a 503 (here: the connection that died)."""
    for _ in range(attempts):
        response = app.post_json(
            answer_url(record_id), {"answer": answer}, headers=REVIEWER, status="*"
        )
        if response.status_code != 503:
            return response
    return response


@pytest.mark.parametrize("backend", ["postgresql"])
def test_server_recovers_from_killed_connections(app, collection, callback, workflows):
    token, execution = callback()
    record = post_step(app, {"taskToken": token, "executionArn": execution})
    app.get("/buckets/stepfunction/collections/manual_steps/records", headers=REVIEWER)

    assert kill_connections() >= 1
    response = answer_until_done(app, record["id"], "SUCCEED")

    assert response.status_code == 200, response.text
    assert response.json["data"]["status"] == "SUCCEED"
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    forget_dead_connections(app)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_worker_recovers_from_killed_connections(app_factory, workflows, start_worker):
    queue = workflows.queue()
    machine = workflows.callback_machine(queue)
    app = app_factory(**{"stepfunction.queues": queue})
    start_worker(app)
    first = workflows.start(machine, {"subject": "before"})
    wait_for(lambda: records_of(app), 15, "the first record")

    assert kill_connections() >= 1
    second = workflows.start(machine, {"subject": "after"})

    stored = wait_for(lambda: len(records_of(app)) == 2 and records_of(app), 30, "both records")
    assert sorted(r["subject"] for r in stored) == ["after", "before"]
    for execution in (first, second):
        workflows.sfn.stop_execution(executionArn=execution)
    forget_dead_connections(app)


def forget_dead_connections(app):
    """The pools still hold the killed connections the test did not use: drop them."""
    registry = app.app.registry
    for backend in (registry.storage, registry.permission, registry.cache):
        sql_engine(backend).dispose()


def records_of(app):
    """The stored records, read as the worker reads (a dead connection reads as none yet)."""

    def read(request):
        return request.registry.storage.list_all(
            resource_name="record", parent_id="/buckets/stepfunction/collections/manual_steps"
        )

    try:
        return transactions.commit(app.app.registry, read)
    except BackendError:
        return []


@pytest.mark.parametrize("backend", ["memory"])
def test_every_queued_task_makes_exactly_one_record(app_factory, workflows, start_worker):
    """Every task a queue delivers becomes exactly one record, redeliveries included."""
    queue = workflows.queue()
    app = app_factory(**{"stepfunction.queues": f"{queue} {queue}"})  # two pollers, one queue
    count = TASKS
    for start in range(0, count, 10):
        entries = [
            {
                "Id": str(n),
                "MessageBody": json.dumps({"TaskToken": f"token-{n}", "Payload": {"n": n}}),
            }
            for n in range(start, start + 10)
        ]
        workflows.sqs.send_message_batch(QueueUrl=queue, Entries=entries)

    start_worker(app)
    wait_for(lambda: count_records(app) >= count or time.sleep(0.5), 300, "the records")
    stored = records_of(app)

    assert len(stored) == count
    assert sorted(record["input"]["n"] for record in stored) == list(range(count))


def count_records(app):
    return app.app.registry.storage.count_all(
        resource_name="record", parent_id="/buckets/stepfunction/collections/manual_steps"
    )


@pytest.mark.timeout(1500)  # 505 s on this machine loaded by six other test runs
@pytest.mark.parametrize("backend", ["memory"])
def test_ten_thousand_activity_tasks_make_one_record_each(app_factory, start_worker):
    """The worker over 10,000 tasks, fed as it goes: every task becomes exactly one record.

    The local Step Functions runs in a process of its own: in the tests' process, earlier
    tests' executions and Kinto slowed it down several times over, unpredictably.
    """
    with EmulatorProcess() as emulator:
        feed_activity_tasks(app_factory, start_worker, Workflows(emulator), ACTIVITY_TASKS)


def feed_activity_tasks(app_factory, start_worker, workflows, count):
    activity = workflows.activity()
    # A task not polled within TimeoutSeconds is gone, never a record (see TASK_TIMEOUT).
    machine = workflows.activity_machine(activity, timeout=TASK_TIMEOUT)
    app = app_factory(
        **{
            "stepfunction.activities": activity,
            "stepfunction.pollers_per_activity": "4",
            "stepfunction.aws_endpoint_url": workflows.emulator.endpoint_url,
        }
    )
    start_worker(app)
    # A bound on a hang, not on speed (pytest's timeout bounds the whole test).
    deadline = time.monotonic() + max(120, count / 10)
    fed = 0
    while fed < count:
        assert time.monotonic() < deadline, f"{count_records(app)} of {fed} tasks stored"
        if fed - count_records(app) >= OUTSTANDING:
            time.sleep(0.05)  # the worker's pace: wait for it, as a client of the queue would
            continue
        for n in range(fed, min(fed + 50, count)):
            workflows.sfn.start_execution(stateMachineArn=machine, input=json.dumps({"n": n}))
        fed = min(fed + 50, count)

    wait_for(lambda: count_records(app) >= count, 120, "every record")
    stored = records_of(app)
    assert len(stored) == count
    assert sorted(record["input"]["n"] for record in stored) == list(range(count))
    assert len({record["id"] for record in stored}) == count


def test_step_functions_stopped_in_the_middle_loses_nothing(
    app_factory, workflows, emulator, callback, start_worker
):
    """Answers and the worker while Step Functions is down: 503 with Retry-After, nothing
    written; once it is back, every answer goes through and the worker polls again."""
    activity = workflows.activity()
    app = app_factory(**{"stepfunction.activities": activity})
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {}, headers=ADMIN)
    start_worker(app)
    steps = []
    for i in range(9):
        token, execution = callback({"n": i})
        record = post_step(app, {"taskToken": token, "executionArn": execution})
        steps.append((record, execution, "SUCCEED" if i % 2 else "FAIL"))

    for record, _, answer in steps[:3]:
        app.post_json(answer_url(record["id"]), {"answer": answer}, headers=REVIEWER)
    emulator.stop()
    try:
        for record, _, answer in steps[3:6]:
            response = app.post_json(
                answer_url(record["id"]), {"answer": answer}, headers=REVIEWER, status=503
            )
            assert int(response.headers["Retry-After"]) > 0
            assert response.json["errno"] == 201
            stored = app.get(f"{STEPS}/records/{record['id']}", headers=ADMIN).json["data"]
            assert stored == record
    finally:
        emulator.start()

    for record, _, answer in steps[3:]:  # the three refused, again, and the three others
        app.post_json(answer_url(record["id"]), {"answer": answer}, headers=REVIEWER)
    for record, execution, answer in steps:
        status = workflows.wait_done(execution)["status"]
        assert status == {"SUCCEED": "SUCCEEDED", "FAIL": "FAILED"}[answer]
        stored = app.get(f"{STEPS}/records/{record['id']}", headers=ADMIN).json["data"]
        assert stored["status"] == answer
    # The worker polls again: a task of after the outage becomes its record.
    execution = workflows.start(workflows.activity_machine(activity), {"subject": "after"})
    wait_for(lambda: any(r.get("subject") == "after" for r in records_of(app)), 30, "the record")
    assert workflows.status(execution) == "RUNNING"
