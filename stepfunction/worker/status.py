"""Executions followed: status-change events from SQS, and reconciliation with
DescribeExecution for what an event missed.

A message is deleted once its status is applied (committed), or when it can never be
(malformed, or an execution Kinto does not know); it stays on its queue when the write
failed, for SQS to deliver it again. A message's body is never logged: an execution's input,
output and cause are the workflow's, not the log's.
"""

import datetime
import logging

from stepfunction import records, transactions
from stepfunction.client import AwsError
from stepfunction.following import apply_status
from stepfunction.status_events import RUNNING, from_description, parse_event
from stepfunction.worker.pollers import poll_queue


logger = logging.getLogger(__name__)

# Records read per storage query, and DescribeExecution calls per pass at most.
RECONCILE_BATCH = 100
RECONCILE_MAX = 1000


def now_iso():
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def poll_status_queue(worker, queue_url):
    poll_queue(worker, queue_url, handle_status_message)


def handle_status_message(worker, queue_url, region, message):
    """Apply the status a message carries, then delete it; whether it was deleted."""
    message_id = message.get("MessageId", "?")
    status = parse_event(message.get("Body"))
    if status is None:
        logger.error(
            "message %s on %s is not a Step Functions Execution Status Change event: deleted",
            message_id,
            queue_url,
        )
    else:
        try:
            outcome, closed = apply(worker.registry, status)
        except Exception as e:
            logger.warning(
                "message %s on %s: applying %s %s failed (%s): left on the queue",
                message_id,
                queue_url,
                status.execution_arn,
                status.status,
                type(e).__name__,
            )
            return False
        log = logger.debug if outcome in ("unknown", "unchanged") and not closed else logger.info
        log(
            "%s %s: execution record %s, %d step(s) closed",
            status.execution_arn,
            status.status,
            outcome,
            closed,
        )
    try:
        worker.client.delete_message(queue_url, region, message["ReceiptHandle"])
    except AwsError as e:  # harmless: applying it again changes nothing
        logger.warning("DeleteMessage %s on %s failed: %s", message_id, queue_url, e)
        return False
    return True


def apply(registry, status):
    """Apply ``status`` in a transaction of its own (a record that ends badly gets, in that
    transaction, the notice of its ``notify`` mail: ``stepfunction.ended_mail``)."""
    settings = registry.stepfunction_settings
    return transactions.commit(
        registry, lambda request: apply_status(request, settings, status, now_iso())
    )


def reconcile_loop(worker):
    seconds = worker.settings.reconcile_seconds
    while not worker.stop_event.wait(seconds):
        try:
            reconcile(worker)
        except Exception:
            logger.exception("reconciliation pass failed")


def to_check(registry):
    """Execution ARNs to ask Step Functions about: those of execution records still RUNNING,
    and those pending steps wait on; ``RECONCILE_MAX`` at most, read in bounded batches."""
    settings = registry.stepfunction_settings
    arns = {}

    def page(read):
        after = None
        while len(arns) < RECONCILE_MAX:
            found = transactions.commit(
                registry, lambda request, after=after: read(request, after)
            )
            for record in found:
                arn = record.get("executionArn")
                if isinstance(arn, str):
                    arns.setdefault(arn, None)
            if len(found) < RECONCILE_BATCH:
                return
            after = found[-1]["last_modified"]

    bucket_id, collection_id = settings.executions
    page(
        lambda request, after: records.records_with_status(
            request, bucket_id, collection_id, RUNNING, RECONCILE_BATCH, after
        )
    )
    for steps_bucket, steps_collection in settings.collections:
        page(
            lambda request, after, b=steps_bucket, c=steps_collection: records.execution_steps(
                request, b, c, limit=RECONCILE_BATCH, after=after
            )
        )
    return list(arns)[:RECONCILE_MAX]


def reconcile(worker):
    """One pass: DescribeExecution for each execution to check (outside any transaction),
    then its status applied as an event's would be. Returns how many were repaired."""
    repaired = 0
    arns = to_check(worker.registry)
    for arn in arns:
        if worker.stop_event.is_set():
            break
        try:
            described = worker.client.describe_execution(arn)
        except AwsError as e:
            level = logging.INFO if e.code == "ExecutionDoesNotExist" else logging.WARNING
            logger.log(level, "DescribeExecution of %s failed: %s", arn, e.code)
            continue
        status = from_description(described)
        if status is None or status.status == RUNNING:
            continue
        outcome, closed = apply(worker.registry, status)
        if outcome == "updated" or closed:
            repaired += 1
            logger.info(
                "reconciled %s %s: execution record %s, %d step(s) closed",
                arn,
                status.status,
                outcome,
                closed,
            )
    logger.debug("reconciliation: %d execution(s) checked, %d repaired", len(arns), repaired)
    return repaired
