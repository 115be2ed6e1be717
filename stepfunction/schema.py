"""The shapes this plugin relies on: the manual-step record and the answer posted to it."""

import json

import colander

from stepfunction.client import parse_arn
from stepfunction.records import ANSWERS, FAIL, SUCCEED, TIMED_OUT, UNANSWERED


DEFAULT_OUTPUT = {"message": "signed off"}
DEFAULT_ERROR = "Not signing off"
DEFAULT_CAUSE = "After reviewing, the decision was made to not sign off"

# Step Functions' own limits: beyond them SendTask* refuses the call.
MAX_OUTPUT_BYTES = 256 * 1024
MAX_ERROR_CHARS = 256
MAX_CAUSE_CHARS = 32768
MAX_TOKEN_CHARS = 1024

# The record schema of the original plugin, with the fields it grew: the callback token,
# the reviewer, and the TIMED_OUT status. Set it on the collection so kinto-admin shows a form.
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
        "status": {
            "type": "string",
            "title": "status",
            "description": "Status of the step, FAIL or SUCCEED",
            "enum": [UNANSWERED, FAIL, SUCCEED, TIMED_OUT],
            "default": UNANSWERED,
        },
        "taskToken": {
            "type": "string",
            "title": "taskToken",
            "description": "Task token of the step (callback tasks post it with the record)",
        },
        "reviewer": {
            "type": "string",
            "title": "Reviewer",
            "description": "Who is asked to sign off",
        },
    },
}
RECORD_UI_SCHEMA = {
    "ui:order": ["subject", "reviewer", "stateMachineArn", "activityArn", "status"]
}


class AnyJSON(colander.SchemaType):
    """Any JSON value, kept as it is."""

    def deserialize(self, node, cstruct):
        return cstruct


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
    output = colander.SchemaNode(AnyJSON(), missing=DEFAULT_OUTPUT, validator=_json_size)
    error = colander.SchemaNode(
        colander.String(), missing=DEFAULT_ERROR, validator=colander.Length(max=MAX_ERROR_CHARS)
    )
    cause = colander.SchemaNode(
        colander.String(), missing=DEFAULT_CAUSE, validator=colander.Length(max=MAX_CAUSE_CHARS)
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
    taskToken = colander.SchemaNode(
        colander.String(allow_empty=True),
        missing=colander.drop,
        validator=colander.Length(min=1, max=MAX_TOKEN_CHARS),
    )
    status = colander.SchemaNode(
        colander.String(),
        missing=UNANSWERED,
        validator=colander.OneOf([UNANSWERED, SUCCEED, FAIL, TIMED_OUT]),
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
