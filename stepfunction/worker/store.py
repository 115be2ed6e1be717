"""A task becomes its record: stored in a transaction of its own, retried until it is stored,
the worker stops, or Step Functions says the task is gone. Never failed for an outage."""

import contextlib
import logging
import threading
import time

from pyramid import httpexceptions

from stepfunction import records, transactions
from stepfunction.client import AwsError, TaskGone, fingerprint
from stepfunction.schema import MAX_CAUSE_CHARS, UNANSWERED
from stepfunction.scrub import holds, scrub
from stepfunction.worker.tasks import (
    INVALID_RECORD,
    RECORD_TAKEN,
    Rejected,
    describe_http_error,
    parse_input,
    step_for,
    task_fields,
)


logger = logging.getLogger(__name__)

# Waits between the attempts to store one task; the last one repeats.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class Store:
    """Stores the tasks of one worker into ``stepfunction.bucket``/``collection``."""

    def __init__(self, registry, stop_event, retry_delays=RETRY_DELAYS):
        self.registry = registry
        self.settings = registry.stepfunction_settings
        self.client = registry.stepfunction_client
        self.stop_event = stop_event
        self.retry_delays = tuple(retry_delays)
        self._handling = 0  # tasks received and not yet settled
        self._settled = threading.Condition()

    @contextlib.contextmanager
    def _holding(self):
        with self._settled:
            self._handling += 1
        try:
            yield
        finally:
            with self._settled:
                self._handling -= 1
                self._settled.notify_all()

    def wait_settled(self, timeout):
        """Wait until no received task is being stored, ``timeout`` seconds at most; whether
        none is."""
        deadline = time.monotonic() + timeout
        with self._settled:
            while self._handling:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._settled.wait(left)
            return True

    def handle(self, task):
        """Store the task, or report to Step Functions why it never can be.

        True once the task is settled (stored, reported, or gone); False when it is neither
        (the worker stops, or the report failed): an SQS message then stays on its queue.
        """
        with self._holding():
            return self._handle(task)

    def _handle(self, task):
        try:
            parsed = parse_input(task.input)
            step = step_for(task, parsed, mail=self.settings.mail_enabled)
        except Rejected as e:
            return self.fail(task, e)
        uri = records.record_uri(self.settings.bucket, self.settings.collection, step.record_id)
        attempt = 0
        while True:
            try:
                outcome = self.store(task, step, parsed)
            except Rejected as e:
                return self.fail(task, e)
            except Exception as e:
                delay = self.retry_delays[min(attempt, len(self.retry_delays) - 1)]
                attempt += 1
                logger.warning(
                    "%s: storing %s failed (attempt %d: %s); retrying in %g s",
                    uri,
                    fingerprint(task.token),
                    attempt,
                    type(e).__name__,
                    delay,
                )
                if self.stop_event.wait(delay):
                    logger.error(
                        "%s: %s not stored: the worker stops", uri, fingerprint(task.token)
                    )
                    return False
                if not self.alive(task):
                    logger.error(
                        "%s: %s is gone (timed out) before it could be stored",
                        uri,
                        fingerprint(task.token),
                    )
                    return True
                continue
            logger.info("%s: %s of %s %s", uri, fingerprint(task.token), task.source, outcome)
            return True

    def alive(self, task):
        """Whether Step Functions still waits on the task (a heartbeat; unknown counts as yes)."""
        try:
            self.client.send_heartbeat(task.token, task.region)
        except TaskGone:
            return False
        except AwsError:
            pass
        return True

    def store(self, task, step, parsed):
        """Write the task's record in one transaction; returns what was done."""
        bucket_id, collection_id = self.settings.bucket, self.settings.collection
        uri = records.record_uri(bucket_id, collection_id, step.record_id)

        def write(request):
            records.ensure_collection(request, bucket_id, collection_id)
            with records.record_lock(request, uri):
                existing = records.read_record(request, bucket_id, collection_id, step.record_id)
                if existing is None:
                    body = {"data": {**step.data, "id": step.record_id}}
                    body["permissions"] = step.permissions
                    records.write_record(
                        request, bucket_id, collection_id, step.record_id, body, create=True
                    )
                    records.put_task(request, uri, task.token, region=task.region)
                    return "stored in a new record"
                current = records.get_task(request, uri)
                if current is not None and current["token"] == task.token:
                    return "already stored"
                if (
                    current is not None
                    or existing.get("taskToken")
                    or (existing.get("status", UNANSWERED) != UNANSWERED)
                ):
                    raise Rejected(
                        RECORD_TAKEN,
                        f"the record {uri} already belongs to another task; name another data.id",
                    )
                fields = task_fields(task, parsed)
                if holds(existing, [task.token]):  # posted with the token before it was one
                    data = {k: v for k, v in existing.items() if k != "last_modified"}
                    body = {"data": {**scrub(data, [task.token]), **fields}}
                    records.write_record(
                        request, bucket_id, collection_id, step.record_id, body, create=True
                    )
                else:
                    records.write_record(request, bucket_id, collection_id, step.record_id, fields)
                records.put_task(request, uri, task.token, region=task.region)
                return "attached to the existing record"

        try:
            return transactions.commit(self.registry, write)
        except httpexceptions.HTTPException as e:
            if e.code < 500:
                raise Rejected(INVALID_RECORD, f"{uri}: {describe_http_error(e)}") from None
            raise

    def fail(self, task, rejected):
        """SendTaskFailure for a task that can never be stored; True once Step Functions has it."""
        cause = rejected.cause[:MAX_CAUSE_CHARS]
        try:
            self.client.send_failure(task.token, rejected.error, cause, task.region)
        except TaskGone as e:
            logger.warning("%s is already gone (%s)", fingerprint(task.token), e.code)
            return True
        except AwsError as e:
            logger.error(
                "%s of %s: %s, and reporting it failed: %s",
                fingerprint(task.token),
                task.source,
                rejected,
                e,
            )
            return False
        logger.error(
            "%s of %s failed on Step Functions: %s", fingerprint(task.token), task.source, rejected
        )
        return True
