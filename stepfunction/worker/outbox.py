"""The outbox: every mail of the plugin (``mail_kinds``: to a step's reviewers, with
reminders; to an ended execution's ``notify`` addresses), sent after its record's write
committed.

Each pass reads the outbox's index of notices that are due (``stepfunction.records``: the open
notices only, however many closed steps there are), then for each step:

    claim (lock, short lease, commit) ─▶ per due reviewer: SMTP send ─▶ its outcome (commit,
    lease renewed) ─▶ release (next due time, lease let go: commit)

(``stepfunction.worker.mailing``). The lease makes several workers safe: a notice is claimed by
one of them at a time, and what SMTP accepted is recorded per recipient as it is accepted, so
each mail and each reminder goes once, even when a worker is stopped or killed mid-pass. A
send that fails is retried after the worker's retry delays; a step whose mail can't be made
is logged and tried again later, alone: it never holds up the others.
"""

import logging
import time

from stepfunction import records, transactions
from stepfunction.worker import mailing
from stepfunction.worker.mail_kinds import kind_of


logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
BATCH = 50
# After a step's mail could not be made: wait this long (doubling), at most the last.
ERROR_DELAYS = (1.0, 60.0, 600.0)


def outbox_loop(worker):
    registry = worker.registry
    wake = registry.stepfunction_outbox_wake
    settings = worker.settings
    first_retry = worker.store.retry_delays[0]
    poll = max(0.05, min(POLL_SECONDS, settings.remind_every or POLL_SECONDS, first_retry))
    failures = 0
    indexed = False
    while not worker.stop_event.is_set():
        wake.clear()
        try:
            if not indexed:
                transactions.commit(registry, records.index_open_notices)
                indexed = True
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
    for entry in due:
        if worker.stop_event.is_set():
            return False
        uri = entry["uri"]
        try:
            deliver(worker, uri)
        except Exception:
            logger.exception("%s: its mail could not be made; trying it again later", uri)
            _postpone(worker, uri)
    return len(due) == BATCH


def _postpone(worker, uri):
    def delay(errors):
        return ERROR_DELAYS[min(errors, len(ERROR_DELAYS)) - 1]

    try:
        transactions.commit(
            worker.registry, lambda r: mailing.postpone(r, uri, delay, time.time())
        )
    except Exception as e:
        logger.warning("%s: could not postpone its mail (%s)", uri, type(e).__name__)


def deliver(worker, uri):
    registry = worker.registry
    claimed = transactions.commit(registry, lambda r: mailing.claim(r, uri, time.time()))
    if claimed is None:
        return
    notice, record, due, linked = claimed
    nonce = notice["nonce"]
    compose = kind_of(notice).compose
    signer = registry.stepfunction_signer if linked else None  # no link that can't answer
    sent = 0
    try:
        for address, before, signs_in in due:
            if worker.stop_event.is_set():
                break
            settings = worker.settings
            message = compose(settings, signer, uri, record, address, nonce, before, signs_in)
            try:
                registry.stepfunction_mailer.send_immediately(message)
                outcome = None
                sent += 1
            except Exception as e:
                outcome = mailing.outcome_of(e)
                logger.warning("%s: mail to %s failed: %s", uri, address, _describe(e))
            going_on = transactions.commit(
                registry,
                lambda r, a=address, o=outcome: mailing.record_outcome(
                    r, worker.settings, worker.store.retry_delays, uri, nonce, a, o, time.time()
                ),
            )
            if not going_on:
                break
    finally:
        transactions.commit(registry, lambda r: mailing.release(r, uri, nonce, time.time()))
    if sent:
        logger.info("%s: mail sent to %d address(es)", uri, sent)


def _describe(error):
    """An SMTP error, short (never the message, which holds the links)."""
    code = getattr(error, "smtp_code", None)
    return f"{type(error).__name__} {code}" if code else f"{type(error).__name__}: {error}"
