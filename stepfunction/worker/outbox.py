"""The outbox: mails to reviewers, sent after their step's write committed, with reminders.

Each pass reads the notices that are due (``stepfunction.notices``), then for each one:

    claim (lock, lease, commit) ─▶ one SMTP send per reviewer ─▶ record what was sent (commit)

The lease makes several workers safe: a notice is claimed by one of them at a time, so each
mail and each reminder goes once. A send that fails is retried after the worker's retry
delays, to the reviewers that did not get it; the step itself never waits on mail.
"""

import logging
import time

from stepfunction import records, transactions
from stepfunction.notices import NEVER, compose, pending, reviewers_of


logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
BATCH = 50
# Longer than a pass over one notice's reviewers can take (SMTP timeouts are 10 s each).
LEASE_SECONDS = 600


def outbox_loop(worker):
    registry = worker.registry
    wake = registry.stepfunction_outbox_wake
    settings = worker.settings
    first_retry = worker.store.retry_delays[0]
    poll = max(0.05, min(POLL_SECONDS, settings.remind_every or POLL_SECONDS, first_retry))
    failures = 0
    while not worker.stop_event.is_set():
        wake.clear()
        try:
            busy = send_due(worker)
            failures = 0
        except Exception as e:  # storage down: the notices wait in it
            failures += 1
            logger.warning("outbox pass failed (%s); retrying", type(e).__name__)
            worker.backoff(failures)
            continue
        if not busy:
            wake.wait(poll)


def send_due(worker):
    """One pass; whether more notices may be due right away."""
    now = time.time()
    due = transactions.commit(worker.registry, lambda r: records.due_notices(r, now, BATCH))
    for notice in due:
        if worker.stop_event.is_set():
            return False
        deliver(worker, notice["uri"])
    return len(due) == BATCH


def claim(request, uri):
    """``(notice, record)`` if this worker may mail the step now; leases the notice."""
    with records.record_lock(request, uri):
        notice = records.get_notice(request, uri)
        now = time.time()
        if notice is None or notice["due"] > now or notice.get("lease", 0) > now:
            return None
        record = records.read_record(request, *records.parse_record_uri(uri))
        if not pending(record) or not reviewers_of(record):
            records.put_notice(request, uri, {**notice, "due": NEVER, "lease": 0})
            return None
        records.put_notice(request, uri, {**notice, "lease": now + LEASE_SECONDS})
        return notice, record


def deliver(worker, uri):
    registry = worker.registry
    claimed = transactions.commit(registry, lambda r: claim(r, uri))
    if claimed is None:
        return
    notice, record = claimed
    delivered = list(notice.get("delivered", ()))
    failed = []
    for address in reviewers_of(record):
        if address in delivered:
            continue
        message = compose(
            worker.settings,
            registry.stepfunction_signer,
            uri,
            record,
            address,
            notice["nonce"],
            notice["sent"],
        )
        try:
            registry.stepfunction_mailer.send_immediately(message)
            delivered.append(address)
        except Exception as e:
            failed.append(address)
            logger.warning("%s: mail to %s failed: %s", uri, address, _describe(e))
    transactions.commit(registry, lambda r: finish(r, worker, uri, notice, delivered, failed))
    if not failed:
        kind = f"reminder {notice['sent']}" if notice["sent"] else "mail"
        logger.info("%s: %s sent to %d reviewer(s)", uri, kind, len(delivered))


def finish(request, worker, uri, notice, delivered, failed):
    """Record a pass: the next reminder, or a retry for those who did not get it."""
    with records.record_lock(request, uri):
        current = records.get_notice(request, uri)
        if current is None or current["nonce"] != notice["nonce"] or current.get("closed"):
            return
        now = time.time()
        settings = worker.settings
        if failed:
            attempts = current.get("attempts", 0) + 1
            delays = worker.store.retry_delays
            delay = delays[min(attempts - 1, len(delays) - 1)]
            changes = {"delivered": delivered, "attempts": attempts, "due": now + delay}
        else:
            sent = current["sent"] + 1
            again = settings.remind_every is not None and sent <= settings.remind_max
            due = now + settings.remind_every if again else NEVER
            changes = {"sent": sent, "delivered": [], "attempts": 0, "due": due}
        records.put_notice(request, uri, {**current, **changes, "lease": 0})


def _describe(error):
    """An SMTP error, short (never the message, which holds the links)."""
    code = getattr(error, "smtp_code", None)
    return f"{type(error).__name__} {code}" if code else f"{type(error).__name__}: {error}"
