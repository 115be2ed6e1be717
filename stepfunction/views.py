"""POST .../records/{id}/stepfunction: a reviewer's answer, sent to Step Functions."""

import logging

from kinto.authorization import RouteFactory
from kinto.core import Service
from kinto.core.authorization import DYNAMIC
from kinto.core.cornice.validators import colander_body_validator
from kinto.core.errors import ERRORS, http_error
from kinto.core.storage.exceptions import ObjectNotFoundError
from pyramid import httpexceptions

from stepfunction.client import InvalidAnswer, TaskGone, Unavailable, UnknownActivity, redact
from stepfunction.records import (
    ANSWERS,
    FAIL,
    RECORD_PATH,
    TIMED_OUT,
    UNANSWERED,
    get_record,
    in_own_transaction,
    patch_record,
    record_lock,
    record_uri,
)
from stepfunction.schema import AnswerSchema, check_record


logger = logging.getLogger(__name__)

WORKER_NAME = "kinto-stepfunction"
RETRY_AFTER_SECONDS = 5


class StepRouteFactory(RouteFactory):
    """Answering a step is writing its record: ``write`` on the record is required.

    As for any write on a missing object, Kinto then asks for ``read`` on its parent, so a
    missing record answers 404 exactly when a GET of it would, and 403 otherwise.
    """

    def __init__(self, request):
        super().__init__(request)
        match = request.matchdict
        self.resource_name = "record"
        self.required_permission = "write"
        self.permission_object_id = record_uri(
            match["bucket_id"], match["collection_id"], match["id"]
        )
        try:
            self.current_object = request.registry.storage.get(
                resource_name="record",
                parent_id="/buckets/{bucket_id}/collections/{collection_id}".format(**match),
                object_id=match["id"],
            )
        except ObjectNotFoundError:
            self.current_object = None


stepfunction = Service(
    name="stepfunction",
    description="Answer the manual step a record describes",
    path=RECORD_PATH + "/stepfunction",
    factory=StepRouteFactory,
)


def error(status, errno, message, details=None, **headers):
    response = http_error(status(), errno=errno, message=message, details=details)
    response.headers.update(headers)
    return response


def unavailable(message):
    return error(
        httpexceptions.HTTPServiceUnavailable,
        ERRORS.BACKEND,
        message,
        **{"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def without_secrets(record):
    if record.get("taskToken"):
        record = {**record, "taskToken": redact(record["taskToken"])}
    return record


@stepfunction.post(schema=AnswerSchema(), permission=DYNAMIC, validators=(colander_body_validator,))
def answer_step(request):
    body = request.validated
    answer = body["answer"]
    match = request.matchdict
    bucket_id, collection_id, record_id = match["bucket_id"], match["collection_id"], match["id"]
    uri = record_uri(bucket_id, collection_id, record_id)
    registry = request.registry
    sfn = registry.stepfunctions

    def write(changes):
        return in_own_transaction(
            request, patch_record, request, bucket_id, collection_id, record_id, changes
        )

    # One answer at a time per record: the second of two concurrent POSTs sees what the
    # first stored (its token, its answer) instead of fetching or answering again.
    with record_lock(registry, uri):
        record = get_record(request, bucket_id, collection_id, record_id)
        step, problems = check_record(record)
        if problems:
            details = [{"location": "record", "name": k, "description": v} for k, v in problems.items()]
            message = "; ".join(f"{k}: {v}" for k, v in problems.items())
            raise error(
                httpexceptions.HTTPBadRequest,
                ERRORS.INVALID_PARAMETERS,
                f"This record can't be answered: {message}",
                details,
            )

        status = step["status"]
        if status in ANSWERS:
            if status == answer:
                logger.info("%s: already answered %s, nothing sent", uri, answer)
                return {"data": without_secrets(record)}
            raise error(
                httpexceptions.HTTPConflict,
                ERRORS.CONSTRAINT_VIOLATED,
                f"This step was already answered {status}.",
            )
        if status == TIMED_OUT:
            raise error(
                httpexceptions.HTTPGone,
                ERRORS.SERVICE_DEPRECATED,
                "This step timed out: Step Functions no longer waits for an answer.",
            )

        region = sfn.region_for(record)
        token = step.get("taskToken")
        activity = step.get("activityArn")
        if not token:
            if activity in registry.stepfunction.activities:
                raise error(
                    httpexceptions.HTTPConflict,
                    ERRORS.CONSTRAINT_VIOLATED,
                    "This step's task was not yet received from Step Functions.",
                )
            try:
                task = sfn.get_activity_task(activity, WORKER_NAME)
            except UnknownActivity as e:
                raise error(
                    httpexceptions.HTTPBadRequest,
                    ERRORS.INVALID_PARAMETERS,
                    f"This record can't be answered: unknown activity {activity} ({e.code}).",
                    [{"location": "record", "name": "activityArn", "description": e.message}],
                )
            except Unavailable as e:
                logger.warning("%s: GetActivityTask on %s failed: %s", uri, activity, e)
                raise unavailable(f"Step Functions is unavailable ({e.code}).")
            if task is None:
                raise error(
                    httpexceptions.HTTPConflict,
                    ERRORS.CONSTRAINT_VIOLATED,
                    f"No execution is waiting on activity {activity}.",
                )
            token = task.token
            logger.info("%s: received task %s of %s", uri, redact(token), activity)
            # Durable before anything else can fail: a token handed out once is never
            # handed out again.
            write({"taskToken": token, "status": UNANSWERED})

        try:
            if answer == FAIL:
                sfn.send_failure(token, body["error"], body["cause"], region)
            else:
                sfn.send_success(token, body["output"], region)
        except TaskGone as e:
            logger.info("%s: task %s is gone (%s)", uri, redact(token), e.code)
            write({"status": TIMED_OUT})
            return error(
                httpexceptions.HTTPGone,
                ERRORS.SERVICE_DEPRECATED,
                f"Step Functions no longer waits for this step ({e.code}).",
            )
        except InvalidAnswer as e:
            return error(httpexceptions.HTTPBadRequest, ERRORS.INVALID_PARAMETERS, e.message)
        except Unavailable as e:
            logger.warning("%s: answer %s for task %s failed: %s", uri, answer, redact(token), e)
            return unavailable(f"Step Functions is unavailable ({e.code}); the answer was not sent.")

        updated = write({"status": answer})
        logger.info(
            "%s: answered %s for task %s of %s", uri, answer, redact(token), activity or "callback"
        )
    return {"data": without_secrets(updated["data"])}
