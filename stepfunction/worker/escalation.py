"""Escalation: a step still unanswered ``escalateAfter`` seconds after it became pending gets
``escalateTo`` as reviewers too (addresses in ``reviewer``, principals in its ``write``), and
the record says ``escalated: {"at", "to"}``. The new addresses are mailed at once (the outbox:
an address new in ``reviewer`` is due its first mail now).

Exactly once, with any number of workers: each escalation is done in one transaction, under
the record's lock (a PostgreSQL advisory lock across processes), which reads the scheduled
escalation again, drops it and writes the record: a second worker finds nothing due.
"""

import datetime
import logging
import time

from stepfunction import records, transactions
from stepfunction.addresses import ascii_address
from stepfunction.decision_fields import decision_of, same_person
from stepfunction.escalation import ESCALATED, escalates_after, schedule
from stepfunction.notices import pending


logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
BATCH = 50
BACKFILL = 500  # pending steps read at once when the worker starts


def escalation_loop(worker):
    failures = 0
    scheduled = False
    while not worker.stop_event.is_set():
        poll = min(POLL_SECONDS, worker.settings.escalate_after or POLL_SECONDS)
        poll = max(0.05, min(poll, getattr(worker, "escalation_poll", poll)))
        try:
            if not scheduled:
                schedule_unscheduled(worker.registry)
                scheduled = True
            escalate_due(worker)
            failures = 0
        except Exception as e:  # storage down: the escalations wait in it
            failures += 1
            logger.warning("escalation pass failed (%s); retrying", type(e).__name__)
            worker.backoff(failures)
            continue
        worker.stop_event.wait(poll)


def schedule_unscheduled(registry):
    """Schedule the pending steps that have no escalation: written by an earlier version, or
    before ``stepfunction.escalate_after`` and ``escalate_to`` were set. Their time runs from
    their last write, the nearest known to when they became pending. How many were."""
    settings = registry.stepfunction_settings
    known = transactions.commit(registry, records.scheduled_uris)
    count = 0
    for ids in settings.collections:
        before = None
        while True:
            page = transactions.commit(
                registry, lambda r, b=before, c=ids: records.pending_records(r, *c, BACKFILL, b)
            )
            for record in page:
                uri = records.record_uri(*ids, record["id"])
                if uri not in known and escalates_after(record, settings):
                    count += transactions.commit(registry, lambda r, u=uri: schedule_one(r, u))
            if len(page) < BACKFILL:
                break
            before = page[-1]["last_modified"]
    if count:
        logger.info("scheduled the escalation of %d step(s) written before it was", count)
    return count


def schedule_one(request, uri):
    """Schedule the step ``uri`` from its last write, unless something was meanwhile."""
    with records.record_lock(request, uri):
        if records.get_escalation(request, uri) is not None:
            return False
        record = records.read_record(request, *records.parse_record_uri(uri))
        if record is None:
            return False
        return schedule(request, uri, record, record["last_modified"] / 1000)


def escalate_due(worker):
    """One pass: escalate every step due now; how many this worker escalated."""
    registry = worker.registry
    due = transactions.commit(registry, lambda r: records.due_escalations(r, time.time(), BATCH))
    done = 0
    for entry in due:
        if worker.stop_event.is_set():
            break
        uri = entry["uri"]
        try:
            done += bool(transactions.commit(registry, lambda r, u=uri: escalate(r, u)))
        except Exception:
            logger.exception("%s: its escalation failed; trying again later", uri)
    return done


def escalate(request, uri, now=None):
    """Escalate the step ``uri`` if it is due: whether this call did."""
    now = time.time() if now is None else now
    ids = records.parse_record_uri(uri)
    with records.record_lock(request, uri):
        entry = records.get_escalation(request, uri)
        if entry is None or entry["due"] > now:
            return False
        records.drop_escalation(request, uri)
        record = records.read_record(request, *ids)
        if not pending(record) or record.get(ESCALATED):
            return False
        people = decision_of(record, request.registry.stepfunction_settings).escalate_to
        addresses = [p for p in people if ascii_address(p)]
        principals = [p for p in people if not ascii_address(p)]
        at = datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="milliseconds")
        changes = {ESCALATED: {"at": at, "to": list(people)}}
        if addresses:
            value = record.get("reviewer")
            current = [value] if isinstance(value, str) else list(value or [])
            new = [a for a in addresses if not any(same_person(a, c) for c in current)]
            changes["reviewer"] = current + new
        acl = None
        if principals:
            write = set(request.registry.permission.get_object_permissions(uri).get("write", ()))
            acl = {"write": sorted(write | set(principals))}
        records.write_record(request, *ids, changes, acl=acl)
    logger.info("%s: escalated to %d reviewer(s)", uri, len(people))
    return True
