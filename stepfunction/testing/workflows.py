"""Test workflows on the local Step Functions: state machines with one manual step, and what
their executions really did. Shared by the tests and the benchmarks; usable by anyone's tests.
"""

import json
import time
import uuid

from botocore.config import Config


REGION = "us-west-2"


def activity_step(activity_arn, timeout=300, heartbeat=None, execution=False):
    """A manual step waiting on an activity task. ``execution``: its input (the step's
    record data) is passed as ``data``, with the execution's ARN beside it."""
    state = {"Type": "Task", "Resource": activity_arn, "TimeoutSeconds": timeout}
    if execution:
        state["Parameters"] = {"data.$": "$", "executionArn.$": "$$.Execution.Id"}
    if heartbeat:
        state["HeartbeatSeconds"] = heartbeat
    return state


def callback_step(queue_url, timeout=300, heartbeat=None, execution=False):
    """A manual step that sends its task token (and its input as ``Payload``) to SQS;
    ``execution``: with the execution's ARN beside them."""
    body = {"TaskToken.$": "$$.Task.Token", "Payload.$": "$"}
    if execution:
        body["executionArn.$"] = "$$.Execution.Id"
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue_url, "MessageBody": body},
        "TimeoutSeconds": timeout,
    }
    if heartbeat:
        state["HeartbeatSeconds"] = heartbeat
    return state


def one_step(state, comment=None, timeout=None):
    """A state machine definition whose only state is ``state``, named ManualStep;
    ``timeout``: the execution's own TimeoutSeconds (it ends TIMED_OUT then)."""
    definition = {"StartAt": "ManualStep", "States": {"ManualStep": {**state, "End": True}}}
    if timeout:
        definition["TimeoutSeconds"] = timeout
    return {"Comment": comment, **definition} if comment else definition


class Workflows:
    """State machines on the emulator, and what their executions really did."""

    def __init__(self, emulator, region=REGION):
        self.emulator = emulator
        self.region = region
        self.sfn = emulator.client(region)
        self.sqs = emulator.client(region, "sqs", config=Config(retries={"max_attempts": 0}))

    def activity(self):
        name = f"Review-{uuid.uuid4().hex[:12]}"
        return self.sfn.create_activity(name=name)["activityArn"]

    def machine(self, state, timeout=None):
        """A state machine whose only state is ``state`` (``timeout``: the execution's)."""
        return self.sfn.create_state_machine(
            name=f"Machine-{uuid.uuid4().hex[:12]}",
            definition=json.dumps(one_step(state, timeout=timeout)),
            roleArn="arn:aws:iam::123456789012:role/StepFunctions",
        )["stateMachineArn"]

    def activity_machine(self, activity_arn, timeout=300, heartbeat=None):
        return self.machine(activity_step(activity_arn, timeout, heartbeat))

    def queue(self):
        return self.sqs.create_queue(QueueName=f"steps-{uuid.uuid4().hex[:12]}")["QueueUrl"]

    def callback_machine(self, queue_url, timeout=300, heartbeat=None):
        return self.machine(callback_step(queue_url, timeout, heartbeat))

    def start(self, machine_arn, payload=None):
        return self.sfn.start_execution(
            stateMachineArn=machine_arn, input=json.dumps(payload or {})
        )["executionArn"]

    def history_types(self, execution_arn):
        events = self.sfn.get_execution_history(executionArn=execution_arn)["events"]
        return [event["type"] for event in events]

    def wait_scheduled(self, execution_arn, event="ActivityScheduled", timeout=30):
        deadline = time.monotonic() + timeout
        while event not in self.history_types(execution_arn):
            assert time.monotonic() < deadline, f"{execution_arn} never reached {event}"
            time.sleep(0.02)

    def receive_token(self, queue_url, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get(
                "Messages", []
            )
            if messages:
                return json.loads(messages[0]["Body"])
        raise AssertionError(f"no message on {queue_url}")

    def wait_done(self, execution_arn, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            assert time.monotonic() < deadline, f"{execution_arn} still RUNNING"
            time.sleep(0.05)

    def status(self, execution_arn):
        return self.sfn.describe_execution(executionArn=execution_arn)["status"]
