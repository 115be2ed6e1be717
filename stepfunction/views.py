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


def bad_record(problems):
    details = [{"location": "record", "name": k, "description": v} for k, v in problems.items()]
    message = "; ".join(f"{k}: {v}" for k, v in problems.items())
    return error(
        httpexceptions.HTTPBadRequest,
        ERRORS.INVALID_PARAMETERS,
        f"This record can't be answered: {message}",
        details,
    )


def conflict(message):
    return error(httpexceptions.HTTPConflict, ERRORS.CONSTRAINT_VIOLATED, message)


def gone(message):
    return error(httpexceptions.HTTPGone, ERRORS.SERVICE_DEPRECATED, message)


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


class Answer:
    """One reviewer's answer to one record, under that record's lock."""

    def __init__(self, request):
        self.request = request
        self.body = request.validated
        match = request.matchdict
        self.ids = (match["bucket_id"], match["collection_id"], match["id"])
        self.uri = record_uri(*self.ids)
        self.sfn = request.registry.stepfunctions
        self.settings = request.registry.stepfunction

    def write(self, changes):
        """Commit ``changes`` to the record now, whatever becomes of this request."""
        return in_own_transaction(self.request, patch_record, *self.ids, changes)

    def fetch_token(self, activity):
        """Get a task of the record's activity, stored in the record before it is used."""
        if activity in self.settings.activities:
            raise conflict("This step's task was not yet received from Step Functions.")
        try:
            task = self.sfn.get_activity_task(activity, WORKER_NAME)
        except UnknownActivity as e:
            raise bad_record({"activityArn": f"unknown activity {activity} ({e.code})"}) from e
        except Unavailable as e:
            logger.warning("%s: GetActivityTask on %s failed: %s", self.uri, activity, e)
            raise unavailable(f"Step Functions is unavailable ({e.code}).") from e
        if task is None:
            raise conflict(f"No execution is waiting on activity {activity}.")
        logger.info("%s: received task %s of %s", self.uri, redact(task.token), activity)
        # Durable before anything else can fail: Step Functions never hands it out again.
        self.write({"taskToken": task.token, "status": UNANSWERED})
        return task.token

    def __call__(self):
        answer = self.body["answer"]
        # Read in a transaction of its own too: instantiating the Record resource may bump
        # the collection's timestamp, and a lock held by this request's transaction would
        # then block the writes below, which wait for their own commit.
        record = in_own_transaction(self.request, get_record, *self.ids)
        step, problems = check_record(record)
        if problems:
            raise bad_record(problems)

        status = step["status"]
        if status == answer:
            logger.info("%s: already answered %s, nothing sent", self.uri, answer)
            return {"data": without_secrets(record)}
        if status in ANSWERS:
            raise conflict(f"This step was already answered {status}.")
        if status == TIMED_OUT:
            raise gone("This step timed out: Step Functions no longer waits for an answer.")

        activity = step.get("activityArn")
        token = step.get("taskToken") or self.fetch_token(activity)
        region = self.sfn.region_for(record)
        try:
            if answer == FAIL:
                self.sfn.send_failure(token, self.body["error"], self.body["cause"], region)
            else:
                self.sfn.send_success(token, self.body["output"], region)
        # From here on the record changed: errors are returned, not raised, so that the
        # request's resource events are still notified.
        except TaskGone as e:
            logger.info("%s: task %s is gone (%s)", self.uri, redact(token), e.code)
            self.write({"status": TIMED_OUT})
            return gone(f"Step Functions no longer waits for this step ({e.code}).")
        except InvalidAnswer as e:
            return error(httpexceptions.HTTPBadRequest, ERRORS.INVALID_PARAMETERS, e.message)
        except Unavailable as e:
            logger.warning("%s: %s for task %s failed: %s", self.uri, answer, redact(token), e)
            return unavailable(f"Step Functions is unavailable ({e.code}); nothing was sent.")

        updated = self.write({"status": answer})
        logger.info(
            "%s: answered %s to task %s of %s",
            self.uri,
            answer,
            redact(token),
            activity or "a callback",
        )
        return {"data": without_secrets(updated["data"])}


@stepfunction.post(
    schema=AnswerSchema(), permission=DYNAMIC, validators=(colander_body_validator,)
)
def answer_step(request):
    answer = Answer(request)
    # One answer at a time per record: the second of two concurrent POSTs sees what the
    # first stored (its token, its answer) instead of fetching or answering again.
    with record_lock(request.registry, answer.uri):
        return answer()
