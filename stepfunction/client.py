"""The Step Functions client, and what its errors mean for a reviewer's answer."""

import json
import logging
import re
import threading
from typing import NamedTuple

import boto3
import botocore.exceptions
from botocore.config import Config


logger = logging.getLogger(__name__)

ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):states:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+):"
    r"(?P<account>\d{12}):(?P<kind>activity|stateMachine):(?P<name>[A-Za-z0-9_.-]{1,80})$"
)

# GetActivityTask holds the connection for up to 60 s when nothing is pending: the read
# timeout must outlast that long poll, or every empty poll would look like an outage.
LONG_POLL_READ_TIMEOUT = 70

GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}
UNKNOWN_ACTIVITY = {"ActivityDoesNotExist", "InvalidArn"}
INVALID_ANSWER = {"InvalidOutput", "ValidationException"}


class Arn(NamedTuple):
    partition: str
    region: str
    account: str
    kind: str
    name: str


def parse_arn(value):
    """An activity or state machine ARN's parts, or None when it is not one."""
    match = ARN.match(value) if isinstance(value, str) else None
    return Arn(**match.groupdict()) if match else None


def redact(token):
    """Enough of a task token to tell two apart in a log, never enough to use it."""
    if not token:
        return "<none>"
    return f"{token[:8]}...({len(token)} chars)"


class StepFunctionsError(Exception):
    """Step Functions refused or failed a call; ``code`` is AWS's error code."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TaskGone(StepFunctionsError):
    """The task no longer waits for an answer (timed out, answered, or unknown)."""


class UnknownActivity(StepFunctionsError):
    """The activity ARN names no activity."""


class InvalidAnswer(StepFunctionsError):
    """Step Functions rejected the answer itself (output too large, error too long...)."""


class Unavailable(StepFunctionsError):
    """Step Functions could not be reached, throttled us, or failed: try again later."""


class ActivityTask(NamedTuple):
    token: str
    input: str


def translate(error):
    """Map a botocore exception onto the errors above."""
    if isinstance(error, botocore.exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code", "Unknown")
        message = error.response.get("Error", {}).get("Message", "")
        if code in GONE:
            return TaskGone(code, message)
        if code in UNKNOWN_ACTIVITY:
            return UnknownActivity(code, message)
        if code in INVALID_ANSWER:
            return InvalidAnswer(code, message)
        # Throttling, 5xx, and credentials or policy refusals alike: nothing the reviewer
        # can fix by changing the answer, so the answer stays retryable.
        return Unavailable(code, message)
    return Unavailable(type(error).__name__, str(error))


class StepFunctions:
    """One boto3 client per region, created on first use and shared by all threads."""

    def __init__(self, settings):
        self.settings = settings
        self._clients = {}
        self._lock = threading.Lock()
        self._session = boto3.session.Session(
            aws_access_key_id=settings.aws_access_key or None,
            aws_secret_access_key=settings.aws_secret_key or None,
        )
        self._config = Config(
            connect_timeout=5,
            read_timeout=LONG_POLL_READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": 3},
        )

    def region_for(self, record=None):
        """The region of a record's activity, else of its state machine, else the setting."""
        for field in ("activityArn", "stateMachineArn"):
            arn = parse_arn((record or {}).get(field))
            if arn is not None:
                return arn.region
        return self.settings.aws_region

    def client(self, region=None, service="stepfunctions"):
        key = (service, region)
        client = self._clients.get(key)
        if client is None:
            # Client creation from a shared session is not thread-safe; use is.
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._session.client(
                        service,
                        region_name=region or self.settings.aws_region,
                        endpoint_url=self.settings.aws_endpoint_url,
                        config=self._config,
                    )
                    self._clients[key] = client
        return client

    def _call(self, region, operation, **params):
        try:
            return getattr(self.client(region), operation)(**params)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            raise translate(e) from e

    def get_activity_task(self, activity_arn, worker_name):
        """Long-poll one task of the activity; None when no execution waits on it."""
        region = parse_arn(activity_arn).region
        response = self._call(
            region, "get_activity_task", activityArn=activity_arn, workerName=worker_name
        )
        if not response.get("taskToken"):
            return None
        return ActivityTask(response["taskToken"], response.get("input") or "{}")

    def send_success(self, token, output, region=None):
        self._call(region, "send_task_success", taskToken=token, output=json.dumps(output))

    def send_failure(self, token, error, cause, region=None):
        self._call(region, "send_task_failure", taskToken=token, error=error, cause=cause)

    def send_heartbeat(self, token, region=None):
        self._call(region, "send_task_heartbeat", taskToken=token)
