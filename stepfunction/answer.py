"""A reviewer's answer to one step, sent to Step Functions, then recorded.

One answer is one write, in the request's own transaction, after Step Functions accepted it:

    read record + token ─▶ SendTaskSuccess/Failure ─▶ lock, PATCH status + answer
    (one SQL statement)    (no lock, no write yet)     (ResourceChanged before the commit)

Only a task fetched with GetActivityTask (``task_fetch``) is committed on its own first
(see ``transactions``).
"""

import datetime
import logging
import time

import transaction
from kinto.core.errors import ERRORS, http_error
from pyramid import httpexceptions

from stepfunction import durable, records, transactions
from stepfunction.client import (
    AwsError,
    InvalidAnswer,
    NotStepFunctions,
    TaskGone,
    Unavailable,
    fingerprint,
)
from stepfunction.errors import (
    bad_record,
    closed_reason,
    conflict,
    error,
    gone,
    not_step_functions,
    unavailable,
)
from stepfunction.schema import (
    ANSWERS,
    CLOSED,
    FAIL,
    TIMED_OUT,
    UNANSWERED,
    check_record,
)
from stepfunction.task_fetch import TaskFetch


logger = logging.getLogger(__name__)

# How long an answer told "task gone" waits for a concurrent, accepted answer to be recorded.
SETTLE_SECONDS = 1.0


class Answered(Exception):
    """The step already holds this answer: respond with it."""

    def __init__(self, body):
        super().__init__()
        self.body = body


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
        token = task["token"] if task else TaskFetch(self.request, self.ids)(step, region)
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
