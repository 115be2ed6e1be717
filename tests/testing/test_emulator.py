"""The local Step Functions, through boto3 over HTTP, as a Step Functions client sees it."""

import json
import threading
import time
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from stepfunction.testing import Emulator, preload


REGION = "us-west-2"
ROLE_ARN = "arn:aws:iam::123456789012:role/test"
POLL_SECONDS = 1


@pytest.fixture(scope="module")
def emu():
    with Emulator(poll_seconds=POLL_SECONDS) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def sfn(emu):
    return emu.client(REGION, config=Config(retries={"max_attempts": 0}))


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_machine(sfn, state, name=None):
    definition = {"StartAt": "Step", "States": {"Step": {**state, "End": True}}}
    return sfn.create_state_machine(
        name=name or unique("sm"), definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]


@pytest.fixture
def activity(sfn):
    return sfn.create_activity(name=unique("act"))["activityArn"]


@pytest.fixture
def machine(sfn, activity):
    return create_machine(sfn, {"Type": "Task", "Resource": activity, "TimeoutSeconds": 60})


def start(sfn, machine, payload=None):
    return sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload or {}))[
        "executionArn"
    ]


def wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def status(sfn, execution):
    return sfn.describe_execution(executionArn=execution)


def finished(sfn, execution):
    description = status(sfn, execution)
    return description if description["status"] != "RUNNING" else None


def event_types(sfn, execution):
    return [e["type"] for e in sfn.get_execution_history(executionArn=execution)["events"]]


def poll(sfn, activity, worker="worker"):
    return sfn.get_activity_task(activityArn=activity, workerName=worker)


def next_task(sfn, activity, worker="worker", attempts=30):
    """Long-poll until a task comes (the execution may not have scheduled it yet)."""
    for _ in range(attempts):
        task = poll(sfn, activity, worker)
        if task.get("taskToken"):
            return task
    raise AssertionError("no activity task")


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_execution_waits_on_activity_then_succeeds(sfn, activity, machine):
    execution = start(sfn, machine, {"addon": 42})
    wait_for(lambda: "ActivityScheduled" in event_types(sfn, execution))
    assert status(sfn, execution)["status"] == "RUNNING"

    task = next_task(sfn, activity, worker="alice")
    assert json.loads(task["input"]) == {"addon": 42}
    started = [
        e
        for e in sfn.get_execution_history(executionArn=execution)["events"]
        if e["type"] == "ActivityStarted"
    ]
    assert started[0]["activityStartedEventDetails"]["workerName"] == "alice"

    sfn.send_task_success(taskToken=task["taskToken"], output=json.dumps({"signed": True}))
    description = wait_for(lambda: finished(sfn, execution))
    assert description["status"] == "SUCCEEDED"
    assert json.loads(description["output"]) == {"signed": True}


def test_send_task_failure_fails_execution_with_error_and_cause(sfn, activity, machine):
    execution = start(sfn, machine)
    task = next_task(sfn, activity)
    sfn.send_task_failure(taskToken=task["taskToken"], error="Rejected", cause="Bad signature")
    description = wait_for(lambda: finished(sfn, execution))
    assert description["status"] == "FAILED"
    assert description["error"] == "Rejected"
    assert description["cause"] == "Bad signature"


def test_each_task_handed_out_once_to_concurrent_pollers(sfn, activity, machine):
    executions = [start(sfn, machine, {"n": n}) for n in range(2)]
    for execution in executions:
        wait_for(lambda e=execution: "ActivityScheduled" in event_types(sfn, e))
    results = []

    def worker():
        results.append(poll(sfn, activity))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tasks = [r for r in results if r.get("taskToken")]
    assert len(results) == 8
    assert sorted(json.loads(t["input"])["n"] for t in tasks) == [0, 1]
    assert len({t["taskToken"] for t in tasks}) == 2
    for task in tasks:
        sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    for execution in executions:
        assert wait_for(lambda e=execution: finished(sfn, e))["status"] == "SUCCEEDED"


def test_empty_poll_returns_no_token_after_poll_seconds(sfn, activity):
    started = time.monotonic()
    assert not poll(sfn, activity).get("taskToken")
    assert POLL_SECONDS * 0.9 <= time.monotonic() - started < POLL_SECONDS + 10  # not 60 s


def test_unknown_or_invalid_activity(sfn):
    unknown = "arn:aws:states:us-west-2:123456789012:activity:nope"
    with pytest.raises(ClientError) as excinfo:
        poll(sfn, unknown)
    assert error_code(excinfo) == "ActivityDoesNotExist"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as excinfo:
        poll(sfn, "not-an-arn")
    assert error_code(excinfo) == "InvalidArn"


def assert_every_answer_fails(sfn, token, code):
    for answer in (
        lambda: sfn.send_task_success(taskToken=token, output="{}"),
        lambda: sfn.send_task_failure(taskToken=token, error="E"),
        lambda: sfn.send_task_heartbeat(taskToken=token),
    ):
        with pytest.raises(ClientError) as excinfo:
            answer()
        assert error_code(excinfo) == code


def test_answering_twice_is_task_does_not_exist(sfn, activity, machine):
    execution = start(sfn, machine)
    task = next_task(sfn, activity)
    sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    assert_every_answer_fails(sfn, task["taskToken"], "TaskDoesNotExist")
    assert wait_for(lambda: finished(sfn, execution))["status"] == "SUCCEEDED"


def test_task_expired_before_hand_out_is_skipped(sfn, activity):
    machine = create_machine(sfn, {"Type": "Task", "Resource": activity, "TimeoutSeconds": 1})
    execution = start(sfn, machine)
    wait_for(lambda: "ActivityScheduled" in event_types(sfn, execution))
    description = wait_for(lambda: finished(sfn, execution))
    assert description["status"] == "FAILED"
    assert description["error"] == "States.Timeout"
    assert "ActivityTimedOut" in event_types(sfn, execution)
    assert not poll(sfn, activity).get("taskToken")


@pytest.mark.parametrize(
    "timeouts",
    # The task must be handed out before it times out: 3 s, as 1 s left little margin on a
    # loaded machine.
    [{"TimeoutSeconds": 3}, {"TimeoutSeconds": 10, "HeartbeatSeconds": 3}],
    ids=["timeout", "heartbeat-timeout"],
)
def test_timed_out_task_answer_is_task_timed_out(sfn, activity, timeouts):
    machine = create_machine(sfn, {"Type": "Task", "Resource": activity, **timeouts})
    execution = start(sfn, machine)
    task = next_task(sfn, activity)
    description = wait_for(lambda: finished(sfn, execution))
    assert description["status"] == "FAILED"
    assert description["error"] == "States.Timeout"
    assert_every_answer_fails(sfn, task["taskToken"], "TaskTimedOut")


def test_heartbeat(sfn, activity, machine):
    execution = start(sfn, machine)
    task = next_task(sfn, activity)
    sfn.send_task_heartbeat(taskToken=task["taskToken"])  # no HeartbeatSeconds: still fine
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_heartbeat(taskToken="not-a-token")
    assert error_code(excinfo) == "InvalidToken"
    sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    assert wait_for(lambda: finished(sfn, execution))["status"] == "SUCCEEDED"


def test_stopped_execution_task_is_skipped_and_gone(sfn, activity, machine):
    execution = start(sfn, machine)
    wait_for(lambda: "ActivityScheduled" in event_types(sfn, execution))
    sfn.stop_execution(executionArn=execution)
    assert not poll(sfn, activity).get("taskToken")


def test_stop_execution_aborts_at_once_with_error_and_cause(sfn, activity, machine):
    """As on AWS: ABORTED before StopExecution answers, its error and cause kept, the waiting
    task ended (not failed or timed out later), and a second stop changes nothing."""
    execution = start(sfn, machine)
    wait_for(lambda: "ActivityScheduled" in event_types(sfn, execution))
    task = next_task(sfn, activity)

    stopped = sfn.stop_execution(executionArn=execution, error="Cancelled", cause="By a test")

    description = status(sfn, execution)
    assert description["status"] == "ABORTED"
    assert description["stopDate"] == stopped["stopDate"]
    assert (description["error"], description["cause"]) == ("Cancelled", "By a test")
    assert event_types(sfn, execution)[-1] == "ExecutionAborted"
    aborted = sfn.get_execution_history(executionArn=execution)["events"][-1]
    assert aborted["executionAbortedEventDetails"] == {"error": "Cancelled", "cause": "By a test"}
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    assert error_code(excinfo) == "TaskDoesNotExist"
    sfn.stop_execution(executionArn=execution, error="Again")
    assert status(sfn, execution)["stopDate"] == stopped["stopDate"]
    assert status(sfn, execution)["error"] == "Cancelled"


def test_stop_execution_of_a_callback_step(emu, sfn):
    sqs = emu.client(REGION, service="sqs")
    queue_url = sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue_url, "MessageBody": {"TaskToken.$": "$$.Task.Token"}},
        "TimeoutSeconds": 60,
    }
    execution = start(sfn, create_machine(sfn, state))
    wait_for(lambda: sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages"))
    sfn.stop_execution(executionArn=execution)
    assert status(sfn, execution)["status"] == "ABORTED"
    assert "error" not in status(sfn, execution)
    assert event_types(sfn, execution)[-1] == "ExecutionAborted"


def test_wait_for_task_token_through_sqs(emu, sfn):
    sqs = emu.client(REGION, service="sqs")
    queue_url = sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
    machine = create_machine(
        sfn,
        {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": queue_url,
                "MessageBody": {"TaskToken.$": "$$.Task.Token", "Payload.$": "$"},
            },
            "TimeoutSeconds": 60,
        },
    )
    execution = start(sfn, machine, {"addon": "x"})
    messages = wait_for(
        lambda: sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages")
    )
    body = json.loads(messages[0]["Body"])
    assert body["Payload"] == {"addon": "x"}
    sfn.send_task_heartbeat(taskToken=body["TaskToken"])
    sfn.send_task_success(taskToken=body["TaskToken"], output=json.dumps({"ok": 1}))
    description = wait_for(lambda: finished(sfn, execution))
    assert description["status"] == "SUCCEEDED"
    assert json.loads(description["output"]) == {"ok": 1}
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_success(taskToken=body["TaskToken"], output="{}")
    assert error_code(excinfo) == "TaskDoesNotExist"


def test_inject_fault_and_calls(emu, sfn, activity):
    emu.inject_fault("SendTaskSuccess", code="ThrottlingException", status=400, count=2)
    emu.reset_calls()
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            sfn.send_task_success(taskToken="whatever", output="{}")
        assert error_code(excinfo) == "ThrottlingException"
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_success(taskToken="whatever", output="{}")
    assert error_code(excinfo) == "InvalidToken"  # the third call reaches moto.

    emu.inject_fault("DescribeActivity")  # defaults: ServiceUnavailable / 503
    with pytest.raises(ClientError) as excinfo:
        sfn.describe_activity(activityArn=activity)
    assert error_code(excinfo) == "ServiceUnavailable"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert sfn.describe_activity(activityArn=activity)["activityArn"] == activity
    assert emu.calls == ["SendTaskSuccess"] * 3 + ["DescribeActivity"] * 2
    emu.reset_calls()
    assert emu.calls == []


def test_preload(emu):
    client = emu.client(REGION)
    arns = preload(client, REGION)
    activity = client.describe_activity(activityArn=arns["activity"])
    assert activity["name"] == "ManualStepTest"
    machine = client.describe_state_machine(stateMachineArn=arns["state_machine"])
    assert machine["name"] == "AddonSigningManualStep"
    definition = json.loads(machine["definition"])
    assert definition["States"]["ManualStep"] == {
        "Type": "Task",
        "Resource": "arn:aws:states:us-west-2:123456789012:activity:ManualStepTest",
        "TimeoutSeconds": 3600,
        "Parameters": {"data.$": "$", "executionArn.$": "$$.Execution.Id"},
        "End": True,
    }
    execution = start(client, arns["state_machine"], {"id": 1})
    task = next_task(client, arns["activity"])
    # The step is told its execution, beside its record's data.
    assert json.loads(task["input"]) == {"data": {"id": 1}, "executionArn": execution}
    client.send_task_success(taskToken=task["taskToken"], output="{}")
    assert wait_for(lambda: finished(client, execution))["status"] == "SUCCEEDED"
    callback = client.describe_state_machine(stateMachineArn=arns["callback_state_machine"])
    assert callback["name"] == "AddonSigningCallbackStep"


def test_reset_clears_state(emu):
    client = emu.client(REGION)
    client.create_activity(name=unique("gone"))
    emu.inject_fault("ListActivities")
    emu.reset()
    assert client.list_activities()["activities"] == []


def status_events(sqs, queue_url, executions, count=2):
    """Each of ``executions``' first ``count`` status-change events from the queue, in order.

    The queues are the process's: an execution of an earlier test that ends meanwhile (a
    timeout) sends its events here too, so only these executions' are kept."""
    by_execution = {arn: [] for arn in executions}

    def received():
        reply = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in reply.get("Messages", []):
            event = json.loads(message["Body"])
            by_execution.get(event["detail"]["executionArn"], []).append(event)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return all(len(events) >= count for events in by_execution.values())

    wait_for(received)
    return by_execution


def test_status_change_events(emu, sfn, activity, machine):
    sqs = emu.client(REGION, service="sqs")
    queue_url = sqs.create_queue(QueueName=unique("status"))["QueueUrl"]
    waiting = create_machine(sfn, {"Type": "Wait", "Seconds": 30})
    earlier = start(sfn, waiting)  # as another test's execution, ending meanwhile
    emu.set_status_queues([queue_url])
    try:
        sfn.stop_execution(executionArn=earlier)
        execution = start(sfn, machine, {"id": 7})
        task = next_task(sfn, activity)
        sfn.send_task_success(taskToken=task["taskToken"], output=json.dumps({"ok": 1}))
        described = wait_for(lambda: finished(sfn, execution))
        failing = start(sfn, machine)
        task = next_task(sfn, activity)
        sfn.send_task_failure(taskToken=task["taskToken"], error="Nope", cause="Rejected")
        wait_for(lambda: finished(sfn, failing))
        timing_out = create_machine(sfn, {"Type": "Wait", "Seconds": 30})
        definition = json.loads(
            sfn.describe_state_machine(stateMachineArn=timing_out)["definition"]
        )
        sfn.update_state_machine(
            stateMachineArn=timing_out, definition=json.dumps({**definition, "TimeoutSeconds": 1})
        )
        timed_out = start(sfn, timing_out)
        stopped = start(sfn, machine)
        sfn.stop_execution(executionArn=stopped, error="Cancelled", cause="Not needed")
        ours = [execution, failing, timed_out, stopped]
        events = status_events(sqs, queue_url, ours)
    finally:
        emu.set_status_queues([])
    # As AWS sends them through EventBridge.
    for arn, received in events.items():
        assert len(received) == 2, received
        for event in received:
            assert event["source"] == "aws.states"
            assert event["detail-type"] == "Step Functions Execution Status Change"
            assert event["resources"] == [arn]
            assert event["account"] == "123456789012" and event["region"] == REGION
    by_execution = {arn: [event["detail"] for event in got] for arn, got in events.items()}
    running, succeeded = by_execution[execution]
    assert running["status"] == "RUNNING" and running["stopDate"] is None
    assert running["name"] == execution.rsplit(":", 1)[1]
    assert running["stateMachineArn"] == machine
    assert json.loads(running["input"]) == {"id": 7}
    assert succeeded["status"] == "SUCCEEDED"
    assert json.loads(succeeded["output"]) == {"ok": 1}
    # Epoch milliseconds, as DescribeExecution's dates.
    assert succeeded["startDate"] == int(described["startDate"].timestamp() * 1000)
    assert succeeded["stopDate"] == int(described["stopDate"].timestamp() * 1000)
    assert [d["status"] for d in by_execution[failing]] == ["RUNNING", "FAILED"]
    failed = by_execution[failing][1]
    assert (failed["error"], failed["cause"], failed["output"]) == ("Nope", "Rejected", None)
    assert [d["status"] for d in by_execution[timed_out]] == ["RUNNING", "TIMED_OUT"]
    assert [d["status"] for d in by_execution[stopped]] == ["RUNNING", "ABORTED"]
    assert by_execution[stopped][1]["error"] == "Cancelled"
    assert by_execution[stopped][1]["cause"] == "Not needed"
    # DescribeExecution gives a TIMED_OUT execution's stopDate too, as AWS does.
    stop = sfn.describe_execution(executionArn=timed_out)["stopDate"]
    assert by_execution[timed_out][1]["stopDate"] == int(stop.timestamp() * 1000)
    # Off again: no more events, from this execution or any other.
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    start(sfn, machine)
    assert not sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages")
