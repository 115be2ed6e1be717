"""The shapes this plugin relies on: ARNs, the manual-step record, and the answer posted to it."""

import json
import re
from typing import NamedTuple

import colander
from kinto.core.resource.schema import ErrorResponseSchema
from kinto.core.schema import Any


# The statuses a record goes through; the two answers are also what a reviewer POSTs.
UNANSWERED, SUCCEED, FAIL, TIMED_OUT = "UNANSWERED", "SUCCEED", "FAIL", "TIMED_OUT"
ANSWERS = (SUCCEED, FAIL)
# A step whose execution ended while it waited: written by the plugin, with ``closed``.
CLOSED = "CLOSED"
STATUSES = (UNANSWERED, SUCCEED, FAIL, TIMED_OUT, CLOSED)

# Fields that say which task a record answers: set by the step's author (or the worker).
DESIGNATION_FIELDS = ("taskToken", "activityArn", "stateMachineArn", "executionArn")
# Fields that say what is asked, of whom, and until when: mails and link pages show them to
# every reviewer, and a mailed link answers as an address in ``reviewer``. They are the step's
# author's (or the worker's) to set, as designations are, and so is the record's ACL.
ASKING_FIELDS = ("subject", "input", "reviewer", "deadline")
# Fields that say how the step is decided (``decisions``): the author's too.
DECISION_FIELDS = (
    "quorum",
    "requester",
    "selfApproval",
    "delegation",
    "escalateAfter",
    "escalateTo",
)
ASKING_FIELDS += DECISION_FIELDS
# Fields that say how the step was answered: written by the plugin alone.
PLUGIN_FIELDS = ("status", "answer", "unreached", "votes", "delegations", "escalated", "closed")

# What a record shows in place of its task token, which only the plugin reads.
TOKEN_MASK = "(stored)"

DEFAULT_OUTPUT = {"message": "signed off"}
DEFAULT_ERROR = "Not signing off"
DEFAULT_CAUSE = "After reviewing, the decision was made to not sign off"

# Step Functions' own limits: beyond them SendTask* refuses the call.
MAX_OUTPUT_BYTES = 256 * 1024
MAX_ERROR_CHARS = 256
MAX_CAUSE_CHARS = 32768
MAX_TOKEN_CHARS = 2048
# A reviewer's comment with an answer, a delegation or a vote.
MAX_COMMENT_CHARS = 4096
MAX_QUORUM = 20

ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):states:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+):"
    r"(?P<account>\d{12}):(?P<kind>activity|stateMachine|execution):"
    r"(?P<name>[A-Za-z0-9_.-]{1,80}(?::[A-Za-z0-9_.-]{1,80})?)"
)

# The record schema of the original plugin, with the fields it grew. Set it on the collection
# so that kinto-admin shows a form.
RECORD_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "subject": {"type": "string", "title": "Subject", "description": "Step description"},
        "stateMachineArn": {
            "type": "string",
            "title": "stateMachineArn",
            "description": "ARN for the step machine (stepfunction)",
        },
        "activityArn": {
            "type": "string",
            "title": "activityArn",
            "description": "ARN for the activity (task aka manual step)",
        },
        "executionArn": {
            "type": "string",
            "title": "executionArn",
            "description": "ARN of the execution waiting on this step",
        },
        "status": {
            "type": "string",
            "title": "status",
            "description": "Status of the step, FAIL or SUCCEED",
            "enum": list(STATUSES),
            "default": UNANSWERED,
        },
        "taskToken": {
            "type": "string",
            "title": "taskToken",
            "description": f"The step's task token; the record shows {TOKEN_MASK!r} once stored",
        },
        "reviewer": {
            "title": "Reviewer",
            "description": "Who is asked to sign off (an email, or a list of them)",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        },
        "answer": {
            "type": "object",
            "title": "Answer",
            "description": "Who answered, when, and what was sent (written by the plugin)",
        },
    },
}
RECORD_UI_SCHEMA = {
    "ui:order": ["subject", "reviewer", "stateMachineArn", "activityArn", "status", "*"]
}


class Arn(NamedTuple):
    partition: str
    region: str
    account: str
    kind: str
    name: str


def parse_arn(value):
    """A Step Functions activity, state machine or execution ARN's parts, else None."""
    match = ARN.fullmatch(value) if isinstance(value, str) else None
    return Arn(**match.groupdict()) if match else None


def _arn_of(kind):
    def validator(node, value):
        arn = parse_arn(value)
        if arn is None or arn.kind != kind:
            raise colander.Invalid(node, f"{value!r} is not a Step Functions {kind} ARN")

    return validator


def _json_size(node, value):
    if len(json.dumps(value).encode("utf-8")) > MAX_OUTPUT_BYTES:
        raise colander.Invalid(node, f"output is larger than {MAX_OUTPUT_BYTES} bytes as JSON")


class AnswerSchema(colander.MappingSchema):
    """The POST body: the answer, and what Step Functions receives with it."""

    answer = colander.SchemaNode(colander.String(), validator=colander.OneOf(ANSWERS))
    output = colander.SchemaNode(Any(), missing=DEFAULT_OUTPUT, validator=_json_size)
    error = colander.SchemaNode(
        colander.String(), missing=DEFAULT_ERROR, validator=colander.Length(max=MAX_ERROR_CHARS)
    )
    cause = colander.SchemaNode(
        colander.String(), missing=DEFAULT_CAUSE, validator=colander.Length(max=MAX_CAUSE_CHARS)
    )
    comment = colander.SchemaNode(
        colander.String(), missing=colander.drop, validator=colander.Length(max=MAX_COMMENT_CHARS)
    )

    @staticmethod
    def schema_type():
        return colander.Mapping(unknown="raise")


class DelegateSchema(colander.MappingSchema):
    """The body of POST …/stepfunction/delegate: to whom, and why."""

    to = colander.SchemaNode(colander.String(), validator=colander.Length(min=1, max=254))
    comment = colander.SchemaNode(
        colander.String(), missing=colander.drop, validator=colander.Length(max=MAX_COMMENT_CHARS)
    )

    @staticmethod
    def schema_type():
        return colander.Mapping(unknown="raise")


class StepRecordSchema(colander.MappingSchema):
    """What a record must hold to be answered: a token, or an activity to fetch one from."""

    stateMachineArn = colander.SchemaNode(
        colander.String(), missing=colander.drop, validator=_arn_of("stateMachine")
    )
    activityArn = colander.SchemaNode(
        colander.String(), missing=colander.drop, validator=_arn_of("activity")
    )
    executionArn = colander.SchemaNode(
        colander.String(), missing=colander.drop, validator=_arn_of("execution")
    )
    taskToken = colander.SchemaNode(
        colander.String(), missing=colander.drop, validator=colander.OneOf([TOKEN_MASK])
    )
    status = colander.SchemaNode(
        colander.String(), missing=UNANSWERED, validator=colander.OneOf(STATUSES)
    )

    def validator(self, node, value):
        if not value.get("taskToken") and not value.get("activityArn"):
            raise colander.Invalid(node, "the record has neither a taskToken nor an activityArn")


def check_record(record):
    """The record's step fields, or a dict of {field: problem} when it can't be answered."""
    try:
        return StepRecordSchema().deserialize(record), None
    except colander.Invalid as e:
        return None, {name or "record": message for name, message in e.asdict().items()}


def valid_token(value):
    """Whether ``value`` can be a task token (a non-empty string within AWS's length)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_TOKEN_CHARS and value != TOKEN_MASK


class _AnsweredBody(colander.MappingSchema):
    data = colander.SchemaNode(
        colander.Mapping(unknown="preserve"), description="The step's record, as stored"
    )


class AnsweredResponseSchema(colander.MappingSchema):
    body = _AnsweredBody()


# What the answer endpoint responds, for Kinto's OpenAPI document (GET /v1/__api__).
ANSWER_RESPONSES = {
    "200": AnsweredResponseSchema(description="Answered (now, or before with this answer)"),
    "202": AnsweredResponseSchema(description="Approval recorded, more approvals needed"),
    "400": ErrorResponseSchema(description="Invalid body, or a record that can't be answered"),
    "401": ErrorResponseSchema(description="Anonymous"),
    "403": ErrorResponseSchema(description="No write permission, or the step's requester"),
    "404": ErrorResponseSchema(description="No such record, or not a steps collection"),
    "409": ErrorResponseSchema(description="Answered otherwise, or no task to answer yet"),
    "410": ErrorResponseSchema(description="Step Functions no longer waits for this step"),
    "415": ErrorResponseSchema(description="Not a JSON body"),
    "502": ErrorResponseSchema(description="Whether the answer reached Step Functions is unknown"),
    "503": ErrorResponseSchema(description="Step Functions unavailable: retry after Retry-After"),
}


# --- Executions (records of the executions collection) ---------------------------------------

# Step Functions' own words for an execution's status.
RUNNING, SUCCEEDED, FAILED, ABORTED = "RUNNING", "SUCCEEDED", "FAILED", "ABORTED"
EXECUTION_STATUSES = (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED)
# What the record's author sets: they say what runs, and can't change once it started.
EXECUTION_AUTHOR_FIELDS = ("stateMachineArn", "input")
# What the plugin writes alone (403 naming the field for anyone else). Dates: ISO 8601, UTC.
EXECUTION_PLUGIN_FIELDS = (
    "executionArn",
    "status",
    "startDate",
    "stopDate",
    "output",
    "error",
    "cause",
    "startedBy",
    "unreached",  # ``notify`` addresses the mail server refused for good
)
# StartExecution's input: at most 256 KiB (UTF-8), as for an answer's output.
MAX_INPUT_BYTES = MAX_OUTPUT_BYTES


class StopSchema(colander.MappingSchema):
    """The body of POST …/stepfunction/stop: what StopExecution records (both optional)."""

    error = colander.SchemaNode(
        colander.String(), missing=colander.drop, validator=colander.Length(max=MAX_ERROR_CHARS)
    )
    cause = colander.SchemaNode(
        colander.String(), missing=colander.drop, validator=colander.Length(max=MAX_CAUSE_CHARS)
    )

    @staticmethod
    def schema_type():
        return colander.Mapping(unknown="raise")


# What the stop endpoint responds, for Kinto's OpenAPI document.
STOP_RESPONSES = {
    "200": AnsweredResponseSchema(description="Stopped: the execution's record, ABORTED"),
    "400": ErrorResponseSchema(description="Invalid body"),
    "401": ErrorResponseSchema(description="Anonymous"),
    "403": ErrorResponseSchema(description="No write permission on the record"),
    "404": ErrorResponseSchema(description="No such record, or not the executions collection"),
    "409": ErrorResponseSchema(description="The execution already ended (its status says how)"),
    "415": ErrorResponseSchema(description="Not a JSON body"),
    "502": ErrorResponseSchema(description="The endpoint did not answer as Step Functions"),
    "503": ErrorResponseSchema(description="Step Functions unavailable: retry after Retry-After"),
}
