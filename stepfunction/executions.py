"""Executions started as records: StartExecution, and the record's fields from its reply.

A record created in ``stepfunction.executions`` with ``{"data": {"stateMachineArn": "<allowed
ARN>", "input": {…}}}`` starts an execution named with the record id, and holds what Step
Functions answered (``executionArn``, ``status: RUNNING``, ``startDate``, ``startedBy``).
The record and the execution share one name: a retried PUT never starts a second execution.
``execution_writes`` starts them on Kinto's own writes (POST, PUT); ``start_record`` for a
caller of the plugin's own (a webhook), without a route. Also the pure helpers that other
modules share (``iso``, ``described``, ``execution_arn``).
"""

import datetime
import json

from kinto.core.errors import ERRORS, http_error
from pyramid import httpexceptions

from stepfunction import records
from stepfunction.client import AwsError, InvalidAnswer, NotStepFunctions
from stepfunction.ended_mail import FIELD as NOTIFY
from stepfunction.ended_mail import notify_problem
from stepfunction.errors import RETRY_AFTER_SECONDS, not_step_functions
from stepfunction.nesting import MAX_DEPTH, holds_nul, too_deep
from stepfunction.schema import (
    EXECUTION_AUTHOR_FIELDS,
    EXECUTION_PLUGIN_FIELDS,
    MAX_INPUT_BYTES,
    RUNNING,
    parse_arn,
)
from stepfunction.status_events import output_value


PROTECTED = EXECUTION_AUTHOR_FIELDS + EXECUTION_PLUGIN_FIELDS
BAD_STATE_MACHINE = {"StateMachineDoesNotExist", "StateMachineDeleting", "InvalidArn"}
BAD_INPUT = {"InvalidExecutionInput"}
MAX_NAME_CHARS = 80  # an execution's name, on AWS
STARTING = "stepfunction.starting"  # request.bound_data key: the request started an execution
START_SAVEPOINT = "stepfunction_start"  # where its writes start again (``execution_races``)


def iso(value):
    """An AWS date as ISO 8601 in UTC (milliseconds): a datetime (boto3), or a number of
    milliseconds since the epoch (EventBridge events); None stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        value = datetime.datetime.fromtimestamp(value / 1000, datetime.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).isoformat(timespec="milliseconds")


def execution_arn(state_machine_arn, name):
    """The ARN Step Functions gives the execution ``name`` of that state machine."""
    arn = parse_arn(state_machine_arn)
    prefix = f"arn:{arn.partition}:states:{arn.region}:{arn.account}:execution"
    return f"{prefix}:{arn.name}:{name}"


def described(description):
    """The plugin's fields of a record, from DescribeExecution's reply."""
    fields = {"executionArn": description["executionArn"], "status": description["status"]}
    fields["startDate"] = iso(description.get("startDate"))
    if description.get("stopDate") is not None:
        fields["stopDate"] = iso(description["stopDate"])
    if description.get("output") is not None:
        fields["output"] = output_value(description["output"])
    fields.update({k: description[k] for k in ("error", "cause") if description.get(k)})
    return fields


def start_problems(data, settings, allow_listed=True):
    """``{field: problem}`` of a new record's ``stateMachineArn`` and ``input`` (empty: none).

    ``allow_listed=False``: the caller's own setting allows the state machine (a webhook's)."""
    problems = {}
    for field in EXECUTION_PLUGIN_FIELDS:
        if field in data:
            problems[field] = f"{field} is written by the stepfunction plugin only"
            return problems
    for field, value in data.items():  # what would fail the record's write once started
        if holds_nul(field) or holds_nul(value):
            problems[field] = f"{field} holds a NUL character (\\u0000): it can't be stored"
            return problems
        if too_deep(value):
            problems[field] = f"{field} nests objects and arrays more than {MAX_DEPTH} deep"
            return problems
    arn = data.get("stateMachineArn")
    parsed = parse_arn(arn)
    if parsed is None or parsed.kind != "stateMachine":
        problems["stateMachineArn"] = "stateMachineArn must be a state machine ARN"
    elif allow_listed and not settings.may_start(arn):
        problems["stateMachineArn"] = (
            "this state machine may not be started through Kinto (see stepfunction.state_machines)"
        )
    value = data.get("input", {})
    if not isinstance(value, dict):
        problems["input"] = "input must be a JSON object"
    elif len(json.dumps(value).encode("utf-8")) > MAX_INPUT_BYTES:
        problems["input"] = f"input is larger than {MAX_INPUT_BYTES} bytes as JSON"
    notify = notify_problem(data.get(NOTIFY))
    if notify:
        problems[NOTIFY] = notify
    return problems


def changed_field(old, new):
    """The first field of ``PROTECTED`` that ``new`` changes from ``old``, or None."""
    return next((f for f in PROTECTED if new.get(f) != old.get(f)), None)


def refused(field, message=None, status=httpexceptions.HTTPBadRequest):
    """Kinto's error naming ``field`` of the body; without ``message``, the 403 of a change
    of a protected field."""
    if message is None:
        status = httpexceptions.HTTPForbidden
        message = (
            f"{field} is written by the stepfunction plugin only."
            if field in EXECUTION_PLUGIN_FIELDS
            else f"{field} says what the execution runs: it can't change once started "
            "(start another execution with a new record)."
        )
    forbidden = status is httpexceptions.HTTPForbidden
    errno = ERRORS.FORBIDDEN if forbidden else ERRORS.INVALID_PARAMETERS
    details = [{"location": "body", "name": field, "description": message}]
    return http_error(status(), errno=errno, message=message, details=details)


def bad_request(problems):
    field, problem = next(iter(problems.items()))
    forbidden = field in EXECUTION_PLUGIN_FIELDS
    status = httpexceptions.HTTPForbidden if forbidden else httpexceptions.HTTPBadRequest
    return refused(field, problem[0].upper() + problem[1:] + ".", status)


def _unavailable(e):
    response = http_error(
        httpexceptions.HTTPServiceUnavailable(),
        errno=ERRORS.BACKEND,
        message=f"Step Functions is unavailable ({e.code}), no record was written: try again "
        "later (the same id and input never start a second execution).",
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def start(request, record_id, state_machine_arn, input, started_by):
    """StartExecution named ``record_id``; the record's plugin fields, or an HTTP error raised.

    The same name and input return the execution already started (AWS's idempotency); once
    it ended, or with another input, AWS refuses the name: an execution of that name with
    this very input is then taken as this record's, any other is a 409.
    """
    if len(record_id) > MAX_NAME_CHARS:
        message = f"The record id names the execution: {MAX_NAME_CHARS} characters at most."
        raise refused("id", message)
    client = request.registry.stepfunction_client
    uri = records.record_uri(*request.registry.stepfunction_settings.executions, record_id)
    _before_start(request)
    try:
        response = client.start_execution(state_machine_arn, record_id, input)
        fields = {"executionArn": response["executionArn"], "status": RUNNING}
        fields["startDate"] = iso(response["startDate"])
    except NotStepFunctions as e:
        raise not_step_functions(uri, e) from None
    except InvalidAnswer as e:
        raise refused("input", f"Step Functions refused the input: {e.message}") from None
    except AwsError as e:
        if e.code in BAD_STATE_MACHINE:
            raise refused("stateMachineArn", f"{e.code}: {e.message}") from None
        if e.code in BAD_INPUT:
            raise refused("input", f"{e.code}: {e.message}") from None
        if e.code == "InvalidName":
            raise refused("id", f"{e.code}: {e.message}") from None
        if e.code != "ExecutionAlreadyExists":
            raise _unavailable(e) from None
        fields = _same_execution(client, state_machine_arn, record_id, input)
    return {**fields, "startedBy": started_by}


def _before_start(request):
    """Mark the request as one that started an execution, and set where its writes start
    again when Kinto's timestamp race aborts them (``execution_races``; PostgreSQL). Nothing
    the request wrote before is undone: it reads before it starts."""
    request.bound_data[STARTING] = True
    if records.sql_engine(request.registry.storage) is not None:
        records.take_savepoint(request, START_SAVEPOINT)


def _same_execution(client, state_machine_arn, record_id, input):
    arn = execution_arn(state_machine_arn, record_id)
    try:
        description = client.describe_execution(arn)
    except AwsError as e:
        raise _unavailable(e) from None
    try:
        same = json.loads(description.get("input") or "{}") == input
    except (ValueError, RecursionError):  # not JSON, or deeper than Python reads: not ours
        same = False
    if not same:
        message = (
            f"An execution named {record_id!r} of this state machine already exists with "
            "another input: give the record another id."
        )
        raise http_error(
            httpexceptions.HTTPConflict(), errno=ERRORS.CONSTRAINT_VIOLATED, message=message
        )
    return described(description)


def start_record(request, record_id, state_machine_arn, input, started_by, allow_listed=True):
    """Start an execution and create its record in the executions collection.

    For the plugin's own callers (the webhook receiver), on their request: ``record_id`` names
    the execution (StartExecution's ``name``) and the record; ``state_machine_arn`` must be
    allowed by ``stepfunction.state_machines``, unless ``allow_listed=False`` (a webhook's
    ``state_machine`` setting is its permission); ``input`` is a JSON object; ``started_by``
    is what the record's ``startedBy`` says (e.g. ``webhook:<name>``). The record is written
    through Kinto's resource (``records.write_record``: history and listeners see it) with no
    permissions of its own: the collection's apply.

    Returns ``(record, created)``. When the record exists already (a replay, or another
    process won the race), returns it with ``created=False`` and starts nothing: the record
    is read before StartExecution, and again under the record's lock before the write. Raises
    Kinto's HTTP errors: 400 naming ``stateMachineArn`` or ``input``; 404 when the
    collection is missing; 409 when an execution of that name exists with another input;
    503 (Retry-After) when Step Functions is unavailable, no record written.
    """
    settings = request.registry.stepfunction_settings
    bucket_id, collection_id = settings.executions
    data = {"stateMachineArn": state_machine_arn, "input": input}
    problems = start_problems(data, settings, allow_listed)
    if problems:
        raise bad_request(problems)
    existing = records.read_record(request, bucket_id, collection_id, record_id)
    if existing is not None:
        return existing, False
    if not records.collection_exists(request, bucket_id, collection_id):
        raise http_error(
            httpexceptions.HTTPNotFound(),
            errno=ERRORS.MISSING_RESOURCE,
            message=f"The executions collection {bucket_id}/{collection_id} does not exist.",
        )
    fields = start(request, record_id, state_machine_arn, input, started_by)
    uri = records.record_uri(bucket_id, collection_id, record_id)
    with records.record_lock(request, uri):
        existing = records.read_record(request, bucket_id, collection_id, record_id)
        if existing is not None:
            return existing, False
        body = {"data": {**data, **fields, "id": record_id}}
        record = records.write_record(
            request, bucket_id, collection_id, record_id, body, create=True
        )
    return record, True
