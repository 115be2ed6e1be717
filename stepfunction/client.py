"""The AWS clients (Step Functions and SQS), and what their errors mean for this plugin."""

import hashlib
import json
import logging
from typing import NamedTuple

import boto3
import botocore.exceptions

from stepfunction.boto_clients import BotoClients
from stepfunction.schema import FAIL, SUCCEED, TIMED_OUT, parse_arn


logger = logging.getLogger(__name__)

GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}
UNKNOWN_ACTIVITY = {"ActivityDoesNotExist", "InvalidArn"}
INVALID_ANSWER = {"InvalidOutput", "ValidationException"}
THROTTLING = {"ThrottlingException", "Throttling", "TooManyRequestsException"}

# How a step ends in an execution's history.
CLOSING_EVENTS = {
    "ActivitySucceeded": SUCCEED,
    "TaskSucceeded": SUCCEED,
    "ActivityFailed": FAIL,
    "TaskFailed": FAIL,
    "ActivityTimedOut": TIMED_OUT,
    "TaskTimedOut": TIMED_OUT,
}


def fingerprint(token):
    """A name for a task token in logs: tells two apart, reveals nothing of either."""
    if not token:
        return "<none>"
    return "task:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


class AwsError(Exception):
    """AWS refused or failed a call; ``code`` is AWS's error code."""

    def __init__(self, code, message, maybe_applied=False):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        # A call sent more than once (botocore retried it, or a reply was lost): an earlier
        # attempt may have taken effect.
        self.maybe_applied = maybe_applied


class TaskGone(AwsError):
    """The task no longer waits for an answer (timed out, answered, or unknown)."""


class UnknownActivity(AwsError):
    """The activity ARN names no activity."""


class InvalidAnswer(AwsError):
    """Step Functions rejected the answer itself (output too large, error too long...)."""


class Unavailable(AwsError):
    """AWS could not be reached, throttled us, or failed: try again later."""


class NotStepFunctions(AwsError):
    """Something answered that is not Step Functions (no request id, not its JSON protocol):
    what became of the call can't be told, and it is never taken as accepted."""


class ActivityTask(NamedTuple):
    token: str
    input: str


# Step Functions speaks AWS's JSON 1.0 protocol, and names every reply with a request id.
JSON_PROTOCOL = "application/x-amz-json-1.0"


def not_step_functions(response):
    """Why a (successful) reply is not one of Step Functions', or None when it is."""
    metadata = response.get("ResponseMetadata", {})
    content_type = metadata.get("HTTPHeaders", {}).get("content-type", "")
    if not metadata.get("RequestId"):
        status = metadata.get("HTTPStatusCode")
        return f"HTTP {status} with no request id ({content_type or 'no content type'})"
    if content_type.split(";")[0].strip().lower() != JSON_PROTOCOL:
        return f"content type {content_type or 'none'}, not {JSON_PROTOCOL}"
    return None


def translate(error, token=None):
    """Map a botocore exception onto the errors above; never keeps a token in a message."""
    if isinstance(error, botocore.exceptions.ClientError):
        metadata = error.response.get("ResponseMetadata", {})
        if not metadata.get("RequestId") and metadata.get("HTTPStatusCode", 500) < 500:
            # A refusal by something else (a web page's 404...): 5xx stay "unavailable".
            status = metadata.get("HTTPStatusCode")
            return NotStepFunctions("NotStepFunctions", f"HTTP {status} with no request id")
        code = error.response.get("Error", {}).get("Code", "Unknown")
        message = error.response.get("Error", {}).get("Message", "")
        retried = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0
        if token:
            message = message.replace(token, fingerprint(token))
        for codes, kind in ((GONE, TaskGone), (UNKNOWN_ACTIVITY, UnknownActivity)):
            if code in codes:
                return kind(code, message, maybe_applied=retried)
        if code in INVALID_ANSWER:
            return InvalidAnswer(code, message)
        # Throttling, 5xx, and credentials or policy refusals alike: nothing the reviewer
        # can fix by changing the answer, so the answer stays retryable.
        return Unavailable(code, message, maybe_applied=code not in THROTTLING)
    # Connection and read time-outs: the request may have been received.
    return Unavailable(type(error).__name__, "no reply from AWS", maybe_applied=True)


def check_reply(response):
    """Raise ``NotStepFunctions`` for a successful reply that is not Step Functions'."""
    problem = not_step_functions(response)
    if problem is not None:
        raise NotStepFunctions("NotStepFunctions", problem)


def known_regions():
    """Every region of every AWS partition that has Step Functions, as botocore knows them."""
    session = boto3.session.Session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("stepfunctions", partition)
    )


class Client:
    """Step Functions and SQS: one boto3 client per service and region, shared by threads.

    Regions come from records: only real AWS regions (and the configured one) get a client,
    so hostile ARNs can't grow the cache.
    """

    def __init__(self, settings):
        self.settings = settings
        self.regions = known_regions() | {settings.aws_region} - {None}
        self.boto = BotoClients(settings)

    def credentials(self):
        """The credentials the clients sign with (the settings', else boto3's chain)."""
        return self.boto.credentials()

    def region_for(self, record=None):
        """The region of a record's ARNs (activity, execution, state machine), else the setting.

        Raises ValueError for a region AWS does not have.
        """
        for field in ("activityArn", "executionArn", "stateMachineArn"):
            arn = parse_arn((record or {}).get(field))
            if arn is not None:
                if arn.region not in self.regions:
                    raise ValueError(f"{arn.region!r} is not an AWS region")
                return arn.region
        return self.settings.aws_region

    def _client(self, service, region):
        return self.boto.get(service, region)

    def _call(self, service, region, operation, token=None, **params):
        try:
            response = getattr(self._client(service, region), operation)(**params)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            raise translate(e, token) from None
        if service == "stepfunctions":
            check_reply(response)
        return response

    # --- Step Functions ---------------------------------------------------------------------

    def probe(self, timeout):
        """Why the endpoint does not answer as Step Functions (a sentence), or None when it
        does: one cheap call (ListActivities), ``timeout`` seconds at most, no retry. A
        refusal that Step Functions signed with a request id (AccessDenied...) is an answer.
        """
        client = self.boto.for_probe(timeout)
        try:
            check_reply(client.list_activities(maxResults=1))
        except botocore.exceptions.ClientError as e:
            metadata = e.response.get("ResponseMetadata", {})
            if not metadata.get("RequestId"):
                return f"HTTP {metadata.get('HTTPStatusCode')} with no request id"
        except NotStepFunctions as e:
            return e.message
        except botocore.exceptions.BotoCoreError as e:
            return f"no answer ({type(e).__name__})"
        return None

    def get_activity_task(self, activity_arn, worker_name):
        """Long-poll one task of the activity; None when no execution waits on it."""
        region = parse_arn(activity_arn).region
        response = self._call(
            "stepfunctions",
            region,
            "get_activity_task",
            activityArn=activity_arn,
            workerName=worker_name,
        )
        if not response.get("taskToken"):
            return None
        return ActivityTask(response["taskToken"], response.get("input") or "{}")

    def send_success(self, token, output, region=None):
        self._call(
            "stepfunctions",
            region,
            "send_task_success",
            token,
            taskToken=token,
            output=json.dumps(output),
        )

    def send_failure(self, token, error, cause, region=None):
        self._call(
            "stepfunctions",
            region,
            "send_task_failure",
            token,
            taskToken=token,
            error=error,
            cause=cause.replace(token, fingerprint(token)),
        )

    def send_heartbeat(self, token, region=None):
        self._call("stepfunctions", region, "send_task_heartbeat", token, taskToken=token)

    def closing(self, execution_arn):
        """How the execution's latest manual step ended (SUCCEED, FAIL, TIMED_OUT), or None.

        Asked when Step Functions says a task is gone: its history, not a guess, says
        whether an answer was applied. An execution that ended without closing the step
        (aborted, failed elsewhere) counts as TIMED_OUT.
        """
        region = parse_arn(execution_arn).region
        paginator = self._client("stepfunctions", region).get_paginator("get_execution_history")
        try:
            for page in paginator.paginate(executionArn=execution_arn, reverseOrder=True):
                check_reply(page)
                for event in page["events"]:
                    if event["type"] in CLOSING_EVENTS:
                        return CLOSING_EVENTS[event["type"]]
            status = self._call(
                "stepfunctions", region, "describe_execution", executionArn=execution_arn
            )["status"]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            raise translate(e) from None
        return None if status == "RUNNING" else TIMED_OUT

    # --- Executions -------------------------------------------------------------------------

    def start_execution(self, state_machine_arn, name, input):
        """StartExecution named ``name``: the same name and input again return the same
        execution (AWS's idempotency), another input raises ``ExecutionAlreadyExists``."""
        return self._call(
            "stepfunctions",
            parse_arn(state_machine_arn).region,
            "start_execution",
            stateMachineArn=state_machine_arn,
            name=name,
            input=json.dumps(input),
        )

    def stop_execution(self, execution_arn, error=None, cause=None):
        params = {"error": error, "cause": cause}
        return self._call(
            "stepfunctions",
            parse_arn(execution_arn).region,
            "stop_execution",
            executionArn=execution_arn,
            **{k: v for k, v in params.items() if v is not None},
        )

    def describe_execution(self, execution_arn):
        return self._call(
            "stepfunctions",
            parse_arn(execution_arn).region,
            "describe_execution",
            executionArn=execution_arn,
        )

    # --- SQS --------------------------------------------------------------------------------

    def receive_messages(self, queue_url, region, wait_seconds, max_messages=10):
        response = self._call(
            "sqs",
            region,
            "receive_message",
            QueueUrl=queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
        )
        return response.get("Messages", [])

    def delete_message(self, queue_url, region, receipt_handle):
        self._call(
            "sqs", region, "delete_message", QueueUrl=queue_url, ReceiptHandle=receipt_handle
        )
