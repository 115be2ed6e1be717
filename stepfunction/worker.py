"""Activity and callback workers: every pending manual step becomes its own Kinto record.

Pollers long-poll GetActivityTask (one thread per configured activity, times
``stepfunction.pollers_per_activity``) and SQS ReceiveMessage (one thread per configured queue,
fed by ``arn:aws:states:::sqs:sendMessage.waitForTaskToken`` states). Each task received is
written before anything else, in one transaction, through Kinto's own resources (so
``last_modified``, schemas, events and ``kinto.plugins.history`` behave as for any write):

- the task input (or the SQS ``Payload``) is the record body ``{"data": ..., "permissions": ...}``
  (a bare object is ``data``); the permissions given are the record's whole ACL;
- the worker adds ``taskToken``, ``status: UNANSWERED``, ``activityArn`` (activity tasks) and
  ``input`` (the task input as received);
- the record id is ``data.id`` when given (the token is attached to that record if it exists, as
  when a Lambda posted it), else derived from the token, so a retried write or a redelivered
  message never makes a second record.

A task that cannot be stored after a few retries is failed on Step Functions
(``stepfunction.StorageError``) so that its execution fails loudly instead of hanging.

Run it beside Kinto with ``stepfunction-worker CONFIG.ini`` (not on the memory backend), or
inside the Kinto server with ``stepfunction.worker_in_process = true``.
"""

import argparse
import atexit
import hashlib
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from typing import NamedTuple
from urllib.parse import urlparse

import botocore.exceptions
from kinto.core.storage import Filter
from kinto.core.storage.exceptions import ObjectNotFoundError
from kinto.core.utils import COMPARISON
from kinto.views.buckets import Bucket
from kinto.views.collections import Collection
from pyramid import httpexceptions
from pyramid.events import ApplicationCreated

from stepfunction.client import StepFunctionsError, TaskGone, UnknownActivity, parse_arn, redact
from stepfunction.records import (
    FAIL,
    SUCCEED,
    TIMED_OUT,
    UNANSWERED,
    get_record,
    kinto_resource,
    record_lock,
    record_resource,
    record_uri,
    write_committed,
)
from stepfunction.schema import MAX_CAUSE_CHARS, RECORD_JSON_SCHEMA, RECORD_UI_SCHEMA


logger = logging.getLogger(__name__)

# Errors reported with SendTaskFailure when a task cannot become a record.
STORAGE_ERROR = "stepfunction.StorageError"
INVALID_RECORD = "stepfunction.InvalidRecord"
RECORD_BUSY = "stepfunction.RecordBusy"

# Waits between the attempts to store one task: 5 attempts over ~7.5 s.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
SQS_MAX_MESSAGES = 10
# Back-off after a failed poll (Step Functions or SQS unreachable, unknown activity...).
POLL_ERROR_BACKOFF = (1.0, 30.0)
# How long the in-process pollers are given at interpreter exit.
IN_PROCESS_STOP_SECONDS = 5.0

# Deterministic record ids for tasks whose input names none.
TOKEN_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://github.com/Kinto/kinto-plugin-stepfunction"
)

SQS_HOST = re.compile(
    r"^(?:sqs\.(?P<a>[a-z]{2}(?:-[a-z]+)+-\d+)\.|(?P<b>[a-z]{2}(?:-[a-z]+)+-\d+)\.queue\.)"
)

# Set by ``main``: the pollers of the command line, never a second set from the ini file.
_RUNNING_CLI = False


class Task(NamedTuple):
    """A task to store: its token, its input as received, and where it came from."""

    token: str
    input: object  # the activity task's input (JSON text) or the SQS payload (parsed)
    source: str  # the activity ARN or the queue URL
    activity_arn: str | None = None
    region: str | None = None


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
    if not isinstance(raw, dict):
        raise Rejected(
            INVALID_RECORD,
            f"the task input must be a JSON object (a record body), not {type(raw).__name__}",
        )
    return raw


def record_body(task, parsed):
    """``(record_id, data, permissions)`` of the record that the task input describes."""
    if isinstance(parsed.get("data"), dict):
        data, permissions = dict(parsed["data"]), parsed.get("permissions") or {}
    else:
        data, permissions = dict(parsed), {}
    if not isinstance(permissions, dict) or not all(
        isinstance(principals, list) and all(isinstance(p, str) for p in principals)
        for principals in permissions.values()
    ):
        raise Rejected(INVALID_RECORD, "permissions must map permission names to principal lists")
    record_id = data.pop("id", None) or record_id_for(task.token)
    if not isinstance(record_id, str):
        raise Rejected(INVALID_RECORD, f"data.id must be a string, not {record_id!r}")
    data.pop("last_modified", None)
    data.update(step_fields(task, parsed))
    return record_id, data, permissions


def step_fields(task, parsed):
    fields = {"taskToken": task.token, "status": UNANSWERED, "input": parsed}
    if task.activity_arn:
        fields["activityArn"] = task.activity_arn
    return fields


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


def queue_region(url, default=None):
    """The region of an SQS queue URL (sqs.<region>.amazonaws.com/...), else ``default``."""
    match = SQS_HOST.match(urlparse(url).hostname or "")
    return (match.group("a") or match.group("b")) if match else default


def worker_name():
    """Who polls, as shown in the execution history: ``host:pid:thread`` (80 chars at most)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"[-80:]


def _create(base, resource_class, resource_name, uri, matchdict, body):
    """Create with a PUT through Kinto's resource, with no owner added (there is no user).

    ``If-None-Match: *``: an object created meanwhile (by another worker) is left as it is;
    returns whether this call created it.
    """
    resource = kinto_resource(
        base, resource_class, resource_name, uri, matchdict, "PUT", body, {"If-None-Match": "*"}
    )
    try:
        resource.put()
    except httpexceptions.HTTPPreconditionFailed:
        return False
    return True


def ensure_collection(base, bucket_id, collection_id):
    """Create the bucket and the collection (with the record schemas) when missing."""
    storage = base.registry.storage
    bucket_uri = f"/buckets/{bucket_id}"
    try:
        storage.get(resource_name="bucket", parent_id="", object_id=bucket_id)
    except ObjectNotFoundError:
        if _create(base, Bucket, "bucket", bucket_uri, {"id": bucket_id}, {"data": {}}):
            logger.info("created bucket %s", bucket_uri)
    try:
        storage.get(resource_name="collection", parent_id=bucket_uri, object_id=collection_id)
    except ObjectNotFoundError:
        uri = f"{bucket_uri}/collections/{collection_id}"
        data = {"schema": RECORD_JSON_SCHEMA, "uiSchema": RECORD_UI_SCHEMA}
        matchdict = {"bucket_id": bucket_id, "id": collection_id}
        if _create(base, Collection, "collection", uri, matchdict, {"data": data}):
            logger.info("created collection %s", uri)


def write_record(base, bucket_id, collection_id, record_id, method, body):
    """PUT or PATCH a record through Kinto's Record resource, with no owner added."""
    resource = record_resource(base, bucket_id, collection_id, record_id, method=method, body=body)
    return resource.put() if method == "PUT" else resource.patch()


class Worker:
    """The pollers (and the heartbeat loop) of one process, as threads; ``stop()`` ends them.

    ``retry_delays``: the waits between the attempts to store one task;
    ``sqs_wait_seconds``: the SQS long-poll time; ``error_backoff``: (first, longest) wait after
    a failed poll.
    """

    def __init__(
        self,
        registry,
        stop=None,
        retry_delays=RETRY_DELAYS,
        sqs_wait_seconds=None,
        error_backoff=POLL_ERROR_BACKOFF,
    ):
        self.registry = registry
        self.settings = registry.stepfunction
        self.sfn = registry.stepfunctions
        self.stop_event = stop or threading.Event()
        self.retry_delays = tuple(retry_delays)
        if sqs_wait_seconds is None:
            sqs_wait_seconds = self.settings.sqs_wait_seconds
        self.sqs_wait_seconds = sqs_wait_seconds
        self.error_backoff = error_backoff
        self.threads = []

    # --- Threads --------------------------------------------------------------------------

    def start(self, daemon=False):
        targets = []
        for arn in self.settings.activities:
            name = parse_arn(arn).name
            for i in range(self.settings.pollers_per_activity):
                targets.append((f"activity-{name}-{i + 1}", self.poll_activity, arn))
        for i, url in enumerate(self.settings.queues):
            targets.append((f"queue-{i + 1}", self.poll_queue, url))
        if self.settings.heartbeat_seconds:
            targets.append(("heartbeat", self.heartbeat_loop, None))
        for name, target, arg in targets:
            args = () if arg is None else (arg,)
            thread = threading.Thread(
                target=self._guard,
                args=(target, *args),
                name=f"stepfunction-{name}",
                daemon=daemon,
            )
            self.threads.append(thread)
            thread.start()
        logger.info(
            "stepfunction worker started: %d activity poller(s), %d queue poller(s), "
            "heartbeats %s, storing into /buckets/%s/collections/%s",
            len(self.settings.activities) * self.settings.pollers_per_activity,
            len(self.settings.queues),
            f"every {self.settings.heartbeat_seconds:g} s"
            if self.settings.heartbeat_seconds
            else "off",
            self.settings.bucket,
            self.settings.collection,
        )
        return self

    def stop(self, timeout=None):
        """Stop polling; polls in flight return and what they bring is stored."""
        self.stop_event.set()
        self.join(timeout)

    def join(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self.threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not any(thread.is_alive() for thread in self.threads)

    def _guard(self, target, *args):
        """Run a loop; a bug in it is logged and the loop restarted, never silently lost."""
        failures = 0
        while not self.stop_event.is_set():
            try:
                target(*args)
                return
            except Exception:
                failures += 1
                logger.exception("%s crashed; restarting it", threading.current_thread().name)
                self._backoff(failures)

    def _backoff(self, failures):
        first, longest = self.error_backoff
        self.stop_event.wait(min(longest, first * 2 ** (failures - 1)))

    # --- Pollers --------------------------------------------------------------------------

    def poll_activity(self, activity_arn):
        name = worker_name()
        region = parse_arn(activity_arn).region
        failures = 0
        while not self.stop_event.is_set():
            try:
                task = self.sfn.get_activity_task(activity_arn, name)
            except UnknownActivity as e:
                failures += 1
                logger.error("GetActivityTask on %s: unknown activity (%s)", activity_arn, e)
                self._backoff(failures)
                continue
            except StepFunctionsError as e:
                failures += 1
                logger.warning("GetActivityTask on %s failed: %s", activity_arn, e)
                self._backoff(failures)
                continue
            failures = 0
            if task is not None:
                self.handle(Task(task.token, task.input, activity_arn, activity_arn, region))

    def poll_queue(self, queue_url):
        region = queue_region(queue_url, self.settings.aws_region)
        sqs = self.sfn.client(region, service="sqs")
        failures = 0
        while not self.stop_event.is_set():
            try:
                response = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=SQS_MAX_MESSAGES,
                    WaitTimeSeconds=self.sqs_wait_seconds,
                )
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                failures += 1
                logger.warning("ReceiveMessage on %s failed: %s", queue_url, e)
                self._backoff(failures)
                continue
            failures = 0
            for message in response.get("Messages", []):
                self.handle_message(sqs, queue_url, region, message)

    def handle_message(self, sqs, queue_url, region, message):
        """Store the task a message carries, then delete the message (only then).

        A message that carries no task token is left on the queue: SQS delivers it again
        after its visibility timeout, and moves it to the queue's dead-letter queue, if one
        is configured, after ``maxReceiveCount`` deliveries.
        """
        message_id = message.get("MessageId", "?")
        try:
            body = json.loads(message.get("Body") or "")
        except ValueError:
            body = None
        token = body.get("TaskToken") or body.get("taskToken") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            logger.error(
                "message %s on %s has no TaskToken in a JSON body: left on the queue "
                "(redelivered, then dead-lettered if the queue has a redrive policy)",
                message_id,
                queue_url,
            )
            return
        payload = body.get("Payload", {k: v for k, v in body.items() if k != "TaskToken"})
        task_region = region
        if isinstance(payload, dict):
            data = payload.get("data") if isinstance(payload.get("data"), dict) else payload
            task_region = self.sfn.region_for(data) if _has_arn(data) else region
        task = Task(token, payload, queue_url, None, task_region)
        if not self.handle(task):
            logger.error(
                "message %s on %s: task %s neither stored nor failed; left on the queue",
                message_id,
                queue_url,
                redact(token),
            )
            return
        try:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            # Harmless: a redelivery finds the record already stored under the same id.
            logger.warning("DeleteMessage %s on %s failed: %s", message_id, queue_url, e)

    # --- Storing a task -------------------------------------------------------------------

    def handle(self, task):
        """Store the task, or report to Step Functions why it can't be.

        True when the task is settled (stored, or its failure reported), False when the
        failure itself could not be reported.
        """
        record_id = None
        try:
            parsed = parse_input(task.input)
            record_id, data, permissions = record_body(task, parsed)
        except Rejected as e:
            return self.fail(task, record_id, e.error, e.cause)
        uri = record_uri(self.settings.bucket, self.settings.collection, record_id)
        delays = iter(self.retry_delays)
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = self.store(task, record_id, data, permissions, parsed)
            except Rejected as e:
                return self.fail(task, record_id, e.error, e.cause)
            except Exception as e:
                delay = next(delays, None)
                if delay is None:
                    logger.error(
                        "%s: task %s of %s could not be stored after %d attempts",
                        uri,
                        redact(task.token),
                        task.source,
                        attempt,
                        exc_info=True,
                    )
                    cause = (
                        f"Kinto could not store the manual step record {uri} after {attempt} "
                        f"attempts; last error: {type(e).__name__}: {e}"
                    )
                    return self.fail(task, record_id, STORAGE_ERROR, cause)
                logger.warning(
                    "%s: storing task %s failed (attempt %d: %s: %s); retrying in %g s",
                    uri,
                    redact(task.token),
                    attempt,
                    type(e).__name__,
                    e,
                    delay,
                )
                time.sleep(delay)
                continue
            logger.info("%s: task %s of %s %s", uri, redact(task.token), task.source, outcome)
            return True

    def store(self, task, record_id, data, permissions, parsed):
        """Write the task's record in one transaction; returns what was done."""
        bucket_id, collection_id = self.settings.bucket, self.settings.collection
        uri = record_uri(bucket_id, collection_id, record_id)

        # Serialises with the answer endpoint, other pollers and other worker processes.
        def write(base):
            ensure_collection(base, bucket_id, collection_id)
            try:
                existing = get_record(base, bucket_id, collection_id, record_id)
            except httpexceptions.HTTPNotFound:
                existing = None
            if existing is None:
                body = {"data": {**data, "id": record_id}, "permissions": permissions}
                write_record(base, bucket_id, collection_id, record_id, "PUT", body)
                return "stored in a new record"
            if existing.get("taskToken") == task.token:
                return "already stored"
            self._check_free(existing, uri)
            body = {"data": step_fields(task, parsed)}
            write_record(base, bucket_id, collection_id, record_id, "PATCH", body)
            return "attached to the existing record"

        with record_lock(self.registry, uri):
            try:
                return write_committed(self.registry, write)
            except httpexceptions.HTTPException as e:
                if e.code < 500:
                    raise Rejected(INVALID_RECORD, f"{uri}: {describe_http_error(e)}") from e
                raise

    def _check_free(self, existing, uri):
        """A record still waiting for another task's answer is not taken over."""
        old = existing.get("taskToken")
        if not old or existing.get("status", UNANSWERED) != UNANSWERED:
            return
        try:
            self.sfn.send_heartbeat(old, self.sfn.region_for(existing))
        except TaskGone:
            return  # that task no longer waits: the record is free for this one.
        raise Rejected(
            RECORD_BUSY,
            f"the record {uri} already waits for the answer to another task "
            f"({redact(old)}); name another data.id",
        )

    def fail(self, task, record_id, error, cause):
        """SendTaskFailure for a task that can't be stored; True once Step Functions has it."""
        where = record_uri(self.settings.bucket, self.settings.collection, record_id or "?")
        try:
            self.sfn.send_failure(task.token, error, cause[:MAX_CAUSE_CHARS], task.region)
        except TaskGone as e:
            logger.warning("%s: task %s is already gone (%s)", where, redact(task.token), e.code)
            return True
        except StepFunctionsError as e:
            logger.error(
                "%s: task %s of %s: %s (%s), and reporting it failed: %s",
                where,
                redact(task.token),
                task.source,
                error,
                cause,
                e,
            )
            return False
        logger.error(
            "%s: task %s of %s failed on Step Functions with %s: %s",
            where,
            redact(task.token),
            task.source,
            error,
            cause,
        )
        return True

    # --- Heartbeats -----------------------------------------------------------------------

    def heartbeat_loop(self):
        while not self.stop_event.wait(self.settings.heartbeat_seconds):
            try:
                self.send_heartbeats()
            except Exception:
                logger.exception("heartbeat pass failed")

    def pending_records(self):
        """Records of the collection still waiting for an answer, with their token."""
        bucket_id, collection_id = self.settings.bucket, self.settings.collection
        has_token = Filter("taskToken", True, COMPARISON.HAS)

        def read(base):
            try:
                resource = record_resource(base, bucket_id, collection_id, "heartbeat")
            except httpexceptions.HTTPNotFound:
                return []  # no collection yet: nothing pending.
            return [
                record
                for status in (
                    Filter("status", UNANSWERED, COMPARISON.EQ),
                    Filter("status", False, COMPARISON.HAS),
                )
                for record in resource.model.get_objects(filters=[has_token, status])
            ]

        return write_committed(self.registry, read)

    def send_heartbeats(self):
        records = self.pending_records()
        sent = 0
        for record in records:
            if self.stop_event.is_set():
                return
            token = record["taskToken"]
            try:
                self.sfn.send_heartbeat(token, self.sfn.region_for(record))
                sent += 1
            except TaskGone as e:
                self.mark_timed_out(record["id"], token, e.code)
            except StepFunctionsError as e:
                logger.warning("heartbeat for task %s failed: %s", redact(token), e)
        logger.debug("sent %d heartbeat(s) for %d pending record(s)", sent, len(records))

    def mark_timed_out(self, record_id, token, code):
        bucket_id, collection_id = self.settings.bucket, self.settings.collection
        uri = record_uri(bucket_id, collection_id, record_id)

        def write(base):
            try:
                record = get_record(base, bucket_id, collection_id, record_id)
            except httpexceptions.HTTPNotFound:
                return False
            if record.get("taskToken") != token or record.get("status") in (SUCCEED, FAIL):
                return False  # answered or reused meanwhile.
            body = {"data": {"status": TIMED_OUT}}
            write_record(base, bucket_id, collection_id, record_id, "PATCH", body)
            return True

        with record_lock(self.registry, uri):
            if not write_committed(self.registry, write):
                return
        logger.info("%s: task %s is gone (%s): status %s", uri, redact(token), code, TIMED_OUT)


def _has_arn(data):
    return any(parse_arn(data.get(field)) for field in ("activityArn", "stateMachineArn"))


# --- In the Kinto server ------------------------------------------------------------------


def start_in_process(config):
    """Run the pollers as daemon threads of the Kinto server, once its app is created."""

    def on_created(event):
        if _RUNNING_CLI:
            return  # ``stepfunction-worker`` on this ini file runs its own pollers.
        registry = event.app.registry
        if not registry.stepfunction.worker_configured:
            logger.warning(
                "stepfunction.worker_in_process is set but neither stepfunction.activities "
                "nor stepfunction.queues is: no poller started"
            )
            return
        worker = Worker(registry)
        registry.stepfunction_worker = worker
        worker.start(daemon=True)
        atexit.register(worker.stop, IN_PROCESS_STOP_SECONDS)

    config.add_subscriber(on_created, ApplicationCreated)


# --- Command line -------------------------------------------------------------------------


def refusal(registry):
    """Why the worker can't run on this configuration, or None."""
    settings = registry.settings
    for kind in ("storage", "permission"):
        backend = str(settings.get(f"{kind}_backend", ""))
        if backend.endswith(".memory"):
            return (
                f"the {kind} backend is {backend}, which lives inside one process: a separate "
                "worker cannot share it. Use PostgreSQL, or set "
                "`stepfunction.worker_in_process = true` to run the pollers inside the Kinto "
                "server instead."
            )
    if not registry.stepfunction.worker_configured:
        return (
            "nothing to poll: set stepfunction.activities (activity ARNs) and/or "
            "stepfunction.queues (SQS queue URLs)."
        )
    return None


def main(argv=None):
    """``stepfunction-worker CONFIG.ini``: poll until SIGTERM/SIGINT, then exit 0."""
    global _RUNNING_CLI
    parser = argparse.ArgumentParser(
        prog="stepfunction-worker",
        description="Turn pending AWS Step Functions manual steps into Kinto records.",
    )
    parser.add_argument("config", metavar="CONFIG.ini", help="the Kinto server's ini file")
    args = parser.parse_args(argv)

    import plaster
    from pyramid.paster import bootstrap, setup_logging

    _RUNNING_CLI = True
    if "loggers" in plaster.get_loader(args.config, protocols=["wsgi"]).get_sections():
        setup_logging(args.config)
    else:  # no logging sections: still one line a task, on stderr.
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    env = bootstrap(args.config)
    try:
        registry = env["registry"]
        problem = refusal(registry)
        if problem:
            logger.critical("stepfunction-worker: %s", problem)
            return 2

        stop = threading.Event()

        def on_signal(signum, frame):
            if not stop.is_set():
                logger.info(
                    "%s: no new polls; storing what polls in flight bring, then exiting",
                    signal.Signals(signum).name,
                )
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)

        worker = Worker(registry, stop=stop).start()
        # Wake up regularly: signal handlers run on the main thread, between waits.
        while not stop.wait(1):
            pass
        while not worker.join(1):
            pass
        logger.info("stepfunction worker stopped")
        return 0
    finally:
        env["closer"]()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
