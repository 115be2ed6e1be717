"""POST …/records/{id}/stepfunction/stop: StopExecution of an execution's record.

By principals with ``write`` on the record (Kinto checks it before the view: nothing reaches
AWS without it), in the executions collection only. The execution must still run, as the
record and then DescribeExecution say (409 with its status otherwise, nothing sent); once
Step Functions stopped it, the record says ``ABORTED`` with its ``stopDate`` (and the
``error`` and ``cause`` given), written through Kinto's record resource.
"""

import logging

from kinto.core import Service
from kinto.core.authorization import DYNAMIC
from kinto.core.cornice.validators import colander_body_validator
from kinto.core.errors import ERRORS, http_error
from pyramid import httpexceptions

from stepfunction import durable, records
from stepfunction.bodies import json_only
from stepfunction.client import AwsError, NotStepFunctions
from stepfunction.contexts import RecordContext
from stepfunction.errors import error, not_step_functions, unavailable
from stepfunction.executions import described, iso
from stepfunction.schema import ABORTED, RUNNING, STOP_RESPONSES, StopSchema


logger = logging.getLogger(__name__)


class ExecutionContext(RecordContext):
    """Stopping an execution is writing its record, in the executions collection."""

    elsewhere = "This collection holds no executions (see stepfunction.executions)."

    def holds(self, settings, bucket_id, collection_id):
        return settings.holds_executions(bucket_id, collection_id)

    def __init__(self, request):
        super().__init__(request)
        self.current_object = records.read_record(request, *self.ids)


stop = Service(
    name="stepfunction-stop",
    description="Stop the execution a record started",
    path=records.RECORD_PATH + "/stepfunction/stop",
    factory=ExecutionContext,
)


def ended(status):
    return error(
        httpexceptions.HTTPConflict,
        ERRORS.CONSTRAINT_VIOLATED,
        f"This execution already ended: {status}.",
        {"status": status},
    )


def _call(request, uri, call):
    """An AWS call's reply, or the HTTP error to answer (raised)."""
    try:
        return call()
    except NotStepFunctions as e:
        raise not_step_functions(uri, e) from None
    except AwsError as e:
        if e.code == "ExecutionDoesNotExist":
            raise ended("unknown to Step Functions") from None
        logger.warning("%s: stopping failed: %s", uri, e)
        raise unavailable(f"Step Functions is unavailable ({e.code}); try again later.") from None


def _record(request, ids, fields):
    """Write ``fields`` unless the record meanwhile says the execution ended; the record."""
    uri = records.record_uri(*ids)

    def work():
        fresh = records.read_record(request, *ids)
        if fresh is None or fresh.get("status") != RUNNING:
            return fresh
        return records.write_record(request, *ids, fields, savepoint=False)

    return durable.write(request, uri, work)


@stop.post(
    schema=StopSchema(),
    permission=DYNAMIC,
    content_type="application/json",
    validators=(json_only, colander_body_validator),
    response_schemas=STOP_RESPONSES,
)
def stop_execution(request):
    context = request.context
    ids, record = context.ids, context.current_object
    if record is None:  # allowed to read the collection: as a GET of the record says.
        details = {"id": ids[2], "resource_name": "record"}
        raise http_error(
            httpexceptions.HTTPNotFound(), errno=ERRORS.INVALID_RESOURCE_ID, details=details
        )
    status, arn = record.get("status"), record.get("executionArn")
    if status != RUNNING or not isinstance(arn, str):
        raise ended(status)
    uri = records.record_uri(*ids)
    client = request.registry.stepfunction_client
    description = _call(request, uri, lambda: client.describe_execution(arn))
    if description["status"] != RUNNING:
        _record(request, ids, described(description))
        return ended(description["status"])  # returned: the record's update is committed
    body = request.validated
    error_, cause = body.get("error"), body.get("cause")
    stopped = _call(request, uri, lambda: client.stop_execution(arn, error_, cause))
    fields = {"status": ABORTED, "stopDate": iso(stopped["stopDate"])}
    fields.update({k: v for k, v in (("error", error_), ("cause", cause)) if v is not None})
    updated = _record(request, ids, fields)
    logger.info("%s: stopped %s", uri, arn)
    return {"data": updated}
