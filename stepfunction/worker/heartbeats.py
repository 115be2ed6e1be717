"""Heartbeats for the pending steps, and TIMED_OUT for those Step Functions gave up on."""

import logging

from stepfunction import records, transactions
from stepfunction.client import AwsError, TaskGone, fingerprint
from stepfunction.schema import TIMED_OUT, UNANSWERED


logger = logging.getLogger(__name__)


def heartbeat_loop(worker):
    while not worker.stop_event.wait(worker.settings.heartbeat_seconds):
        try:
            send_heartbeats(worker)
        except Exception:
            logger.exception("heartbeat pass failed")


def send_heartbeats(worker):
    """One pass: read the pending tasks, then call AWS outside any transaction or lock."""
    settings = worker.settings
    pending = transactions.commit(
        worker.registry,
        lambda request: records.pending_tasks(request, settings.bucket, settings.collection),
    )
    sent = 0
    for record_id, task in pending:
        if worker.stop_event.is_set():
            return
        try:
            worker.client.send_heartbeat(task["token"], task.get("region"))
            sent += 1
        except TaskGone as e:
            if not task.get("sent"):  # an answer that may have reached it is the next POST's
                mark_timed_out(worker, record_id, task["token"], e.code)
        except AwsError as e:
            logger.warning("heartbeat for %s failed: %s", fingerprint(task["token"]), e)
    logger.debug("sent %d heartbeat(s) for %d pending step(s)", sent, len(pending))


def mark_timed_out(worker, record_id, token, code):
    bucket_id, collection_id = worker.settings.bucket, worker.settings.collection
    uri = records.record_uri(bucket_id, collection_id, record_id)

    def write(request):
        with records.record_lock(request, uri):
            record = records.read_record(request, bucket_id, collection_id, record_id)
            task = records.get_task(request, uri)
            if record is None or task is None or task["token"] != token or task.get("closed"):
                return False  # answered, deleted or given another task meanwhile.
            if record.get("status", UNANSWERED) == UNANSWERED:
                records.write_record(
                    request, bucket_id, collection_id, record_id, {"status": TIMED_OUT}
                )
            records.close_task(request, uri, TIMED_OUT, task)
            return True

    if transactions.commit(worker.registry, write):
        logger.info("%s: %s is gone (%s): status %s", uri, fingerprint(token), code, TIMED_OUT)
