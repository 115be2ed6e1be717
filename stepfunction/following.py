"""An execution's status applied to Kinto: its execution record follows it, and the steps
that wait on it close when it ends.

Every change is a write through Kinto's ``Record`` resource (``records.write_record``), so
history, kinto-emailer and webhooks see it, in the caller's transaction. Nothing is written
when the records already say it: a storm of duplicate events writes each change once.
"""

import logging

from stepfunction import records
from stepfunction.schema import CLOSED, UNANSWERED
from stepfunction.status_events import ENDED, changes


logger = logging.getLogger(__name__)

# At most this many steps of one execution are closed in one transaction (the rest: by the
# next event or reconciliation pass).
CLOSE_BATCH = 100


def apply_status(request, settings, status, now):
    """Apply ``status`` (a ``status_events.Status``): returns ``(record, closed)``, what was
    done to the execution record ("updated", "unchanged", "unknown" or "mismatch") and the
    number of steps closed."""
    outcome = follow_record(request, settings, status)
    closed = close_steps(request, settings, status, now) if status.status in ENDED else 0
    return outcome, closed


def follow_record(request, settings, status):
    """Bring the execution record named after the execution up to ``status``."""
    bucket_id, collection_id = settings.executions
    record_id = status.name
    if not records.RECORD_ID.fullmatch(record_id):
        return "unknown"
    uri = records.record_uri(bucket_id, collection_id, record_id)
    with records.record_lock(request, uri):
        record = records.read_record(request, bucket_id, collection_id, record_id)
        if record is None:
            return "unknown"
        if record.get("executionArn") != status.execution_arn:
            return "mismatch"  # another execution of that name (another state machine)
        wanted = changes(record, status)
        if not wanted:
            return "unchanged"
        records.write_record(request, bucket_id, collection_id, record_id, wanted)
        logger.info(
            "%s: %s -> %s", uri, record.get("status"), wanted.get("status", record.get("status"))
        )
        return "updated"


def close_steps(request, settings, status, now):
    """Close the pending steps, in every steps collection, that wait on this ended execution."""
    closed = 0
    at = status.stop_date or now
    for bucket_id, collection_id in settings.collections:
        steps = records.execution_steps(
            request, bucket_id, collection_id, status.execution_arn, limit=CLOSE_BATCH
        )
        for step in steps:
            if close_step(request, bucket_id, collection_id, step["id"], status, at):
                closed += 1
    return closed


def close_step(request, bucket_id, collection_id, record_id, status, at):
    """``status: CLOSED`` for a step still UNANSWERED; whether it was closed."""
    uri = records.record_uri(bucket_id, collection_id, record_id)
    with records.record_lock(request, uri):
        step = records.read_record(request, bucket_id, collection_id, record_id)
        if step is None or step.get("executionArn") != status.execution_arn:
            return False
        if step.get("status", UNANSWERED) != UNANSWERED:
            return False
        task = records.get_task(request, uri)
        if task is not None and (task.get("accepted") or task.get("sent")):
            return False  # an answer may have ended it: the next answer records it.
        closed = {"executionStatus": status.status, "at": at}
        records.write_record(
            request, bucket_id, collection_id, record_id, {"status": CLOSED, "closed": closed}
        )
        records.close_task(request, uri, CLOSED, task)
    logger.info("%s: closed, its execution %s", uri, status.status)
    return True
