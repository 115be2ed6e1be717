"""What a task received from Step Functions (or SQS) becomes: pure functions, no I/O."""

import hashlib
import json
import logging
import os
import re
import socket
import threading
import uuid
from typing import NamedTuple
from urllib.parse import urlparse

from stepfunction.addresses import deadline_problem, split_reviewers
from stepfunction.nesting import MAX_DEPTH, holds_nul, too_deep
from stepfunction.schema import PLUGIN_FIELDS, TOKEN_MASK, UNANSWERED, parse_arn, valid_token
from stepfunction.scrub import scrub


# Errors reported with SendTaskFailure when a task can never become a record.
INVALID_RECORD = "stepfunction.InvalidRecord"
RECORD_TAKEN = "stepfunction.RecordTaken"

# Deterministic record ids for tasks whose input names none.
TOKEN_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://github.com/Kinto/kinto-plugin-stepfunction"
)
RECORD_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")
SQS_HOST = re.compile(
    r"^(?:sqs\.(?P<a>[a-z]{2}(?:-[a-z]+)+-\d+)\.|(?P<b>[a-z]{2}(?:-[a-z]+)+-\d+)\.queue\.)"
)
PERMISSIONS = ("read", "write")
INVALID_ADDRESS = "not an email address this server can mail"
DEEPER = f"objects or arrays deeper than {MAX_DEPTH} levels"

logger = logging.getLogger(__name__)


class Task(NamedTuple):
    """A task to store: its token, its input as received, and where it came from."""

    token: str
    input: object  # the activity task's input (JSON text) or the SQS payload (parsed)
    source: str  # the activity ARN or the queue URL
    activity_arn: str | None = None
    region: str | None = None


class Step(NamedTuple):
    """The record a task becomes."""

    record_id: str
    data: dict
    permissions: dict


class Rejected(Exception):
    """The task can never become a record as it is: report it to Step Functions now."""

    def __init__(self, error, cause):
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


def record_id_for(token):
    """A record id derived from the token: the same task always names the same record."""
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
    return str(uuid.uuid5(TOKEN_NAMESPACE, digest))


def parse_input(raw):
    """The task input (a JSON text or an already parsed value) as a JSON object."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            raise Rejected(INVALID_RECORD, f"the task input is not JSON ({e})") from None
        except RecursionError:
            raise Rejected(INVALID_RECORD, f"the task input nests {DEEPER}") from None
    # What no backend would store alike (PostgreSQL's JSONB refuses NUL; deep values crash
    # Python's copies and validators): refused now, on both backends, never retried.
    if holds_nul(raw):
        raise Rejected(INVALID_RECORD, "the task input holds a NUL character (\\u0000)")
    if too_deep(raw):
        raise Rejected(INVALID_RECORD, f"the task input nests {DEEPER}")
    if not isinstance(raw, dict):
        raise Rejected(
            INVALID_RECORD,
            f"the task input must be a JSON object (a record body), not {type(raw).__name__}",
        )
    return raw


def _check_permissions(permissions):
    if not isinstance(permissions, dict) or not all(
        name in PERMISSIONS
        and isinstance(principals, list)
        and all(isinstance(p, str) for p in principals)
        for name, principals in permissions.items()
    ):
        raise Rejected(
            INVALID_RECORD, "permissions must map read and write to lists of principals"
        )


def step_for(task, parsed, mail=False):
    """The record the task input describes: ``{"data": …, "permissions": …}`` or bare data.

    The worker adds the task's fields; a ``taskToken``, ``status`` or ``answer`` in the input
    is not the input's to set. The task's token is masked wherever the input carries it.
    """
    parsed = scrub(parsed, [task.token])
    if isinstance(parsed.get("data"), dict):
        data, permissions = dict(parsed["data"]), parsed.get("permissions") or {}
        if "executionArn" in parsed:  # passed beside the record: ``"$$.Execution.Id"``
            data.setdefault("executionArn", parsed["executionArn"])
    else:
        data, permissions = dict(parsed), {}
    _check_permissions(permissions)
    record_id = data.pop("id", None) or record_id_for(task.token)
    if not isinstance(record_id, str) or not RECORD_ID.fullmatch(record_id):
        raise Rejected(INVALID_RECORD, f"data.id must be a Kinto record id, not {record_id!r}")
    for field in ("last_modified", "taskToken", *PLUGIN_FIELDS):
        data.pop(field, None)
    drop_unusable(data, record_id, mail)
    execution = data.get("executionArn")
    if execution is not None and getattr(parse_arn(execution), "kind", None) != "execution":
        raise Rejected(INVALID_RECORD, "data.executionArn must be an execution ARN")
    data.update(task_fields(task, parsed))
    return Step(record_id, data, permissions)


def drop_unusable(data, record_id, mail):
    """Leave out of a task's record the addresses it can't mail (listed as ``unreached``),
    with mail on, and a deadline out of range, with a warning: the step is still stored."""
    if mail and data.get("reviewer") is not None:
        valid, invalid = split_reviewers(data["reviewer"])
        if invalid or not isinstance(data["reviewer"], str | list):
            logger.warning(
                "%s: the task's reviewer holds invalid address(es): left out", record_id
            )
            data["reviewer"] = valid
            data["unreached"] = [
                {
                    "address": (a if isinstance(a, str) else json.dumps(a))[:320],
                    "reason": INVALID_ADDRESS,
                }
                for a in invalid
            ]
    if deadline_problem(data.get("deadline")):
        logger.warning("%s: the task's deadline is out of range: left out", record_id)
        data.pop("deadline")


def task_fields(task, parsed):
    """What the worker writes of a task into its record (the token itself is kept apart,
    and masked in the input)."""
    fields = {"taskToken": TOKEN_MASK, "status": UNANSWERED, "input": scrub(parsed, [task.token])}
    if task.activity_arn:
        fields["activityArn"] = task.activity_arn
    return fields


def parse_message(message):
    """``(token, payload)`` of an SQS message sent by a ``.waitForTaskToken`` state.

    The body is ``{"TaskToken": …, "Payload": …}`` (or any object with ``TaskToken``: the
    rest is the payload). None when it carries no task token.
    """
    try:
        body = json.loads(message.get("Body") or "")
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    token = body.get("TaskToken") or body.get("taskToken")
    if not valid_token(token):
        return None
    rest = {k: v for k, v in body.items() if k not in ("TaskToken", "taskToken")}
    payload = body.get("Payload", rest)
    if "Payload" in body and "executionArn" in body and isinstance(payload, dict):
        payload = {**payload, "executionArn": body["executionArn"]}  # beside the token
    return token, payload


def payload_region(payload, default):
    """The region of the ARNs a payload's record names, else ``default``."""
    data = payload.get("data") if isinstance(payload, dict) else None
    data = data if isinstance(data, dict) else payload
    for field in ("activityArn", "executionArn", "stateMachineArn"):
        arn = parse_arn(data.get(field)) if isinstance(data, dict) else None
        if arn is not None:
            return arn.region
    return default


def queue_region(url, default=None):
    """The region of an SQS queue URL (sqs.<region>.amazonaws.com/...), else ``default``."""
    match = SQS_HOST.match(urlparse(url).hostname or "")
    return (match.group("a") or match.group("b")) if match else default


def worker_name():
    """Who polls, as shown in the execution history: ``host:pid:thread`` (80 chars at most)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"[-80:]


def describe_http_error(error):
    """``"400 Bad Request: <Kinto's message>"`` for an error response of a resource."""
    message = ""
    try:
        body = json.loads(error.body or b"{}")
        message = body.get("message") or ""
        details = body.get("details")
        if details:
            message = f"{message} {json.dumps(details)}".strip()
    except (TypeError, ValueError, AttributeError):
        pass
    return f"{error.code} {error.title}: {message or error.explanation or ''}".rstrip(": ")
