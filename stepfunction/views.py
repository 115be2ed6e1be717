"""POST .../records/{id}/stepfunction: a reviewer's answer, sent to Step Functions.

One answer is one write, in the request's own transaction, after Step Functions accepted it:

    read record + token ─▶ SendTaskSuccess/Failure ─▶ lock, PATCH status + answer
    (one SQL statement)    (no lock, no write yet)     (ResourceChanged before the commit)

Only a task fetched here with GetActivityTask is committed on its own first (see
``transactions``).
"""

import datetime
import logging
import threading
import time

import transaction
from kinto.authorization import RouteFactory
from kinto.core import Service
from kinto.core.authorization import DYNAMIC
from kinto.core.cornice.validators import colander_body_validator
from kinto.core.errors import ERRORS, http_error
from pyramid import httpexceptions

from stepfunction import durable, people, records, transactions
from stepfunction.bodies import json_only
from stepfunction.client import (
    AwsError,
    InvalidAnswer,
    NotStepFunctions,
    TaskGone,
    Unavailable,
    UnknownActivity,
    fingerprint,
)
from stepfunction.schema import (
    ANSWER_RESPONSES,
    ANSWERS,
    CLOSED,
    FAIL,
    TIMED_OUT,
    TOKEN_MASK,
    UNANSWERED,
    AnswerSchema,
    check_record,
)


logger = logging.getLogger(__name__)

WORKER_NAME = "kinto-stepfunction"
RETRY_AFTER_SECONDS = 5
# Answers that may wait on GetActivityTask's 60 s long poll at once, per process: the other
# web threads stay free. The worker has no such limit.
FETCH_SLOTS = threading.BoundedSemaphore(2)
# How long an answer told "task gone" waits for a concurrent, accepted answer to be recorded.
SETTLE_SECONDS = 1.0
# A claim to fetch a record's task outlives the long poll (60 s on AWS) only after a crash.
CLAIM_SECONDS = 90


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
    # Errno 110, "invalid token / id": the step's task token no longer resumes anything.
    return error(httpexceptions.HTTPGone, ERRORS.INVALID_RESOURCE_ID, message)


def unavailable(message):
    return error(
        httpexceptions.HTTPServiceUnavailable,
        ERRORS.BACKEND,
        message,
        **{"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def not_step_functions(uri, e):
    """Something that is not Step Functions answered: nothing is recorded (errno 201, as for
    any backend failure; 502: the upstream's reply can't be trusted)."""
    logger.warning("%s: the endpoint does not answer as Step Functions: %s", uri, e.message)
    return error(
        httpexceptions.HTTPBadGateway,
        ERRORS.BACKEND,
        "The Step Functions endpoint did not answer as Step Functions: nothing was recorded "
        "(see stepfunction.aws_endpoint_url).",
    )


def closed_reason(record):
    """Why a step closed with its execution, in one sentence."""
    closed = record.get("closed") if isinstance(record.get("closed"), dict) else {}
    how = closed.get("executionStatus") or "ended"
    return (
        f"This step closed with its execution ({how} at {closed.get('at') or 'an unknown time'}): "
        "Step Functions no longer waits for an answer."
    )


class Answered(Exception):
    """The step already holds this answer: respond with it."""

    def __init__(self, body):
        super().__init__()
        self.body = body


class RecordContext(RouteFactory):
    """A plugin endpoint that writes one record of a collection the settings name.

    ``write`` on the record is required, checked by Kinto before the view: nothing reaches
    AWS without it. As for any write on a missing object, Kinto then asks for ``read`` on its
    parent, so a missing record answers 404 exactly when a GET of it would. Subclasses say
    which collections (``holds``) and what to say of the others (``elsewhere``).
    """

    elsewhere = "This collection is not one of the plugin's."

    def holds(self, settings, bucket_id, collection_id):
        raise NotImplementedError

    def __init__(self, request):
        super().__init__(request)
        match = request.matchdict
        ids = (match["bucket_id"], match["collection_id"], match["id"])
        if not self.holds(request.registry.stepfunction_settings, *ids[:2]):
            raise error(httpexceptions.HTTPNotFound, ERRORS.MISSING_RESOURCE, self.elsewhere)
        if not records.RECORD_ID.fullmatch(ids[2]):
            raise error(
                httpexceptions.HTTPBadRequest,
                ERRORS.INVALID_PARAMETERS,
                "Invalid record id",
                [{"location": "path", "name": "id", "description": "Invalid record id"}],
            )
        self.ids = ids
        self.resource_name = "record"
        self.required_permission = "write"
        self.permission_object_id = records.record_uri(*ids)


class StepContext(RecordContext):
    """Answering a step is writing its record, in a collection configured for steps."""

    elsewhere = "This collection holds no manual steps (see stepfunction.collections)."

    def holds(self, settings, bucket_id, collection_id):
        return settings.holds_steps(bucket_id, collection_id)

    def __init__(self, request):
        super().__init__(request)
        # The record and its task in one read: the task is only used once Kinto allowed the
        # write (a ``write`` on the record, checked before the view).
        self.current_object, self.task = records.read_step(request, *self.ids)


stepfunction = Service(
    name="stepfunction",
    description="Answer the manual step a record describes",
    path=records.RECORD_PATH + "/stepfunction",
    factory=StepContext,
)


def now():
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


class Answer:
    """One reviewer's answer to one record: ``Answer(request, ids, body, by)(record, task)``.

    ``body`` is a valid ``AnswerSchema``; ``by`` is who the audit names (the user's id, or
    ``link:<email>`` for a mailed link).
    """

    def __init__(self, request, ids, body, by):
        self.request = request
        self.body = body
        self.by = by
        self.answer = self.body["answer"]
        self.ids = ids
        self.uri = records.record_uri(*self.ids)
        self.client = request.registry.stepfunction_client
        self.settings = request.registry.stepfunction_settings
        self.task = None  # the stored task, once read

    def audit(self):
        """What the record keeps of this answer, for its readers."""
        sent = {"output": self.body["output"]}
        if self.answer == FAIL:
            sent = {"error": self.body["error"], "cause": self.body["cause"]}
        return {"answer": self.answer, "by": self.by, "at": now(), **sent}

    def __call__(self, record, task):
        """Answer the step ``record`` (None if missing), whose stored ``task`` was read with
        it (``records.read_step``)."""
        if record is None:  # allowed to read the collection: as a GET of the record says.
            details = {"id": self.ids[2], "resource_name": "record"}
            raise http_error(
                httpexceptions.HTTPNotFound(), errno=ERRORS.INVALID_RESOURCE_ID, details=details
            )
        step, problems = check_record(record)
        if problems:
            raise bad_record(problems)
        try:
            region = self.client.region_for(step)
        except ValueError as e:
            raise bad_record({"region": str(e)}) from None

        self.closed(step["status"], record)
        self.task = task
        if task and task.get("closed"):  # closed since this request read the record
            record = records.read_record(self.request, *self.ids) or record
            self.closed(record.get("status", task["closed"]), record)
        if task and task.get("accepted"):  # accepted before, its write lost: record it now
            accepted = task["accepted"]
            updated = self.write(accepted["answer"], accepted, force=True)
            self.closed(accepted["answer"], updated)
        token = task["token"] if task else self.fetch(step, region)
        try:
            if self.answer == FAIL:
                self.client.send_failure(token, self.body["error"], self.body["cause"], region)
            else:
                self.client.send_success(token, self.body["output"], region)
        # Below, error responses are returned, not raised: what they write is committed.
        except TaskGone as e:
            return self.settle(step, e.maybe_applied or bool(task and task.get("sent")), e)
        except NotStepFunctions as e:
            return not_step_functions(self.uri, e)
        except InvalidAnswer as e:
            raise error(
                httpexceptions.HTTPBadRequest, ERRORS.INVALID_PARAMETERS, e.message
            ) from None
        except Unavailable as e:
            logger.warning("%s: %s to %s failed: %s", self.uri, self.answer, fingerprint(token), e)
            if e.maybe_applied:  # remember it: a later "task gone" may be this answer.
                fetched = task is None or bool(task.get("fetched"))  # links check it
                records.put_task(
                    self.request, self.uri, token, region=region, sent=self.answer, fetched=fetched
                )
            return unavailable(f"Step Functions is unavailable ({e.code}); try again later.")

        audit = self.audit()
        self.keep_if_aborted(token, region, audit)
        updated = self.write(self.answer, audit, force=True)
        logger.info("%s: answered %s to %s", self.uri, self.answer, fingerprint(token))
        return {"data": updated}

    def closed(self, status, record):
        """Raise the answer to a step that is no longer open: nothing is sent again."""
        if status == self.answer:
            logger.info("%s: already answered %s, nothing sent", self.uri, self.answer)
            raise Answered({"data": record})
        if status in ANSWERS:
            raise conflict(f"This step was already answered {status}.")
        if status == TIMED_OUT:
            raise gone("This step timed out: Step Functions no longer waits for an answer.")
        if status == CLOSED:
            raise gone(closed_reason(record))

    def fetch(self, step, region):
        """A task of the record's activity, committed to the record before it is used.

        One request per record fetches (a claim committed first, across processes): two
        concurrent answers never take two tasks for one record.
        """
        activity = step.get("activityArn")
        if not activity:
            raise bad_record({"taskToken": "no task token is stored for this record"})
        if activity in self.settings.activities:
            raise conflict("This step's task was not yet received from Step Functions.")
        if not self.settings.may_fetch(activity):
            problem = "answers don't fetch tasks of this activity (see fetch_activities)"
            raise bad_record({"activityArn": problem})
        if not FETCH_SLOTS.acquire(blocking=False):
            raise unavailable("Other answers are already waiting for tasks; try again later.")
        try:
            return self.fetch_claimed(activity, region)
        finally:
            FETCH_SLOTS.release()

    def fetch_claimed(self, activity, region):
        registry = self.request.registry
        claimed = transactions.commit_aside(
            registry, lambda r: records.claim_task(r, self.uri, CLAIM_SECONDS)
        )
        if claimed is False:
            raise unavailable("Another answer is fetching this step's task; try again.")
        if claimed is not True:
            return claimed["token"]  # stored meanwhile by another answer
        try:
            task = self.client.get_activity_task(activity, WORKER_NAME)
        except AwsError as e:
            transactions.commit_aside(registry, lambda r: records.drop_task(r, self.uri))
            if isinstance(e, NotStepFunctions):
                raise not_step_functions(self.uri, e) from None
            if isinstance(e, UnknownActivity):
                problem = f"unknown activity {activity} ({e.code})"
                raise bad_record({"activityArn": problem}) from None
            logger.warning("%s: GetActivityTask on %s failed: %s", self.uri, activity, e)
            raise unavailable(f"Step Functions is unavailable ({e.code}).") from None
        if task is None:
            transactions.commit_aside(registry, lambda r: records.drop_task(r, self.uri))
            raise conflict(f"No execution is waiting on activity {activity}.")
        logger.info("%s: received %s of %s", self.uri, fingerprint(task.token), activity)

        # ``fetched``: GetActivityTask does not say whose task this is: no link answers it.
        def store(request):
            records.put_task(request, self.uri, task.token, region=region, fetched=True)
            changes = {"taskToken": TOKEN_MASK, "status": UNANSWERED}
            records.write_record(request, *self.ids, changes)

        try:  # durable before anything else can fail: Step Functions won't hand it out again.
            transactions.commit_aside(registry, store)
        except Exception:
            logger.exception("%s: storing %s failed", self.uri, fingerprint(task.token))
            transactions.commit_aside(
                registry,
                lambda r: records.put_task(r, self.uri, task.token, region=region, fetched=True),
            )
        return task.token

    def keep_if_aborted(self, token, region, audit):
        """If this request's write is refused or lost, remember the answer Step Functions
        accepted: the next answer to the record records it."""

        def remember(success=False):
            if success:
                return

            def work(request):
                records.put_task(request, self.uri, token, region=region, accepted=audit)

            try:
                transactions.commit_aside(self.request.registry, work)
            except Exception:
                logger.exception("%s: could not remember the answer sent", self.uri)

        current = transaction.get()
        current.addAfterCommitHook(remember)
        current.addAfterAbortHook(remember)

    def settle(self, step, maybe_applied, e):
        """Step Functions says the task is gone: its history says why, when it can be told."""
        closing = None
        execution = step.get("executionArn")
        if execution:
            try:
                closing = self.client.closing(execution)
            except AwsError as lookup:
                logger.warning("%s: history of %s: %s", self.uri, execution, lookup)
        elif not maybe_applied:
            # Nothing of ours reached it: it timed out, or another answer was just accepted.
            # That one's write follows within moments: give it the chance to land first.
            answered = self.answered_meanwhile()
            if answered is not None:
                self.closed(answered.get("status"), answered)
            closing = TIMED_OUT
        logger.info("%s: task gone (%s); its step closed as %s", self.uri, e.code, closing)
        if closing is None:
            return error(
                httpexceptions.HTTPBadGateway,
                ERRORS.BACKEND,
                "Step Functions no longer waits for this step, and whether this answer "
                "reached it can't be told yet (a record with an executionArn tells).",
            )
        audit = None
        if closing in ANSWERS:
            audit = self.audit() if closing == self.answer and maybe_applied else None
            audit = audit or {"answer": closing, "by": None, "at": now(), "source": "history"}
        updated = self.write(closing, audit, force=False)
        status = (updated or {}).get("status")
        if status == self.answer:
            return {"data": updated}
        if status in ANSWERS:
            return conflict(f"This step was already answered {status}.")
        return gone(f"Step Functions no longer waits for this step ({e.code}).")

    def answered_meanwhile(self):
        """The record, if another request records an answer within ``SETTLE_SECONDS``."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            fresh = records.read_record(self.request, *self.ids)
            if fresh is None or fresh.get("status", UNANSWERED) in ANSWERS:
                return fresh
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def write(self, status, audit, force):
        """Record how the step closed; ``force``: Step Functions accepted this very answer.

        Kinto's timestamp race never aborts it: the write and its listeners are tried again
        (``durable``), never the call to Step Functions.
        """

        def work():
            if not force:  # what another request recorded meanwhile may be the truth
                fresh = records.read_record(self.request, *self.ids)
                if fresh is None or fresh.get("status", UNANSWERED) in ANSWERS:
                    return fresh
            changes = {"status": status}
            if audit:
                changes["answer"] = audit
            updated = records.write_record(self.request, *self.ids, changes, savepoint=False)
            records.close_task(self.request, self.uri, status, self.task)
            return updated

        return durable.write(self.request, self.uri, work)


@stepfunction.post(
    schema=AnswerSchema(),
    permission=DYNAMIC,
    content_type="application/json",
    validators=(json_only, colander_body_validator),
    response_schemas=ANSWER_RESPONSES,
)
def answer_step(request):
    from stepfunction.decisions import decide  # one vote of several (it builds on Answer)

    context = request.context
    people.remember(request)  # the dashboard names who answered (people.py)
    by, principals = request.prefixed_userid, request.prefixed_principals
    try:
        return decide(
            request,
            context.ids,
            request.validated,
            by,
            context.current_object,
            context.task,
            principals,
        )
    except Answered as answered:
        return answered.body
