"""Stored mail notices of steps, and the outbox's index of those that may be due."""

import contextlib

from kinto.core.storage import Filter, Sort
from kinto.core.utils import COMPARISON

from stepfunction.records.locks import record_lock, sql_engine
from stepfunction.records.private import drop_private, get_private, index_id


NOTICE = "stepfunction-notice"
NOTICE_ID = "notice"
ALL_RECORDS = "/buckets/*/collections/*/records/*"
# The outbox's index: one small object per notice that may be due, under one parent, so that
# a pass reads the open notices only (an indexed query on PostgreSQL), never the closed ones.
OUTBOX = "stepfunction-outbox"
OUTBOX_PARENT = "/stepfunction/outbox"
NEVER_DUE = 2.0**53


def get_notice(request, uri):
    """The step's notice: ``{"nonce", "due", "lease", "recipients", ...}``, or None."""
    return get_private(request, NOTICE, uri, NOTICE_ID)


def put_notice(request, uri, notice):
    """Store the step's notice, and keep it in the outbox's index while it may be due."""
    notice = {**notice, "id": NOTICE_ID, "uri": uri}
    notice.pop("last_modified", None)
    storage = request.registry.storage
    storage.update(resource_name=NOTICE, parent_id=uri, object_id=NOTICE_ID, obj=notice)
    if notice["due"] < NEVER_DUE:
        _index_notice(request, uri, notice)
    else:
        drop_private(request, OUTBOX, OUTBOX_PARENT, index_id(uri))


def _index_notice(request, uri, notice):
    # ``since``: when its longest-waiting mail became due, failed sends or not (the heartbeat's).
    since = min(notice.get("since", notice["due"]), notice["due"])
    entry = {"uri": uri, "due": notice["due"], "lease": notice.get("lease", 0), "since": since}
    request.registry.storage.update(
        resource_name=OUTBOX, parent_id=OUTBOX_PARENT, object_id=index_id(uri), obj=entry
    )


def drop_notice(request, uri):
    drop_private(request, NOTICE, uri, NOTICE_ID)
    drop_private(request, OUTBOX, OUTBOX_PARENT, index_id(uri))


def due_notices(request, now, limit, free_at=None, by="due"):
    """The notices due at ``now`` and not leased, soonest first: ``[{"uri", "due", "lease"}]``
    (the outbox's index); ``by="since"``: those whose mail has waited since ``now``.

    On PostgreSQL one indexed query (the objects of one parent). Kinto's memory backend
    matches a parent id against every parent it holds (one per record with a task or a
    notice), so the index's objects are read from its store directly, under its lock.
    """
    storage = request.registry.storage
    # Not those another worker is sending (leased): a pass would find nothing to claim.
    free_at = now if free_at is None else free_at
    filters = [Filter(by, now, COMPARISON.MAX), Filter("lease", free_at, COMPARISON.MAX)]
    sorting = [Sort("due", 1)]
    store = getattr(storage, "_store", None)
    if sql_engine(storage) is None and isinstance(store, dict):
        with getattr(storage, "__lock__", None) or contextlib.nullcontext():
            objects = list(store.get(OUTBOX_PARENT, {}).get(OUTBOX, {}).values())
        found, _ = storage.extract_object_set(
            objects=objects, filters=filters, sorting=sorting, limit=limit
        )
        return found
    return storage.list_all(
        resource_name=OUTBOX,
        parent_id=OUTBOX_PARENT,
        filters=filters,
        sorting=sorting,
        limit=limit,
    )


def index_open_notices(request):
    """Put in the outbox's index the open notices of an earlier version (which had none)."""
    notices = request.registry.storage.list_all(
        resource_name=NOTICE,
        parent_id=ALL_RECORDS,
        filters=[Filter("due", NEVER_DUE, COMPARISON.LT)],
    )
    for listed in notices:
        # Only the index is written, from the notice read again under the record's lock: a
        # worker starting while another one sends must not write back what it listed before
        # that send (the lease, who was mailed), or the mail would go out twice.
        with record_lock(request, listed["uri"]):
            notice = get_notice(request, listed["uri"])
            if notice is not None and notice["due"] < NEVER_DUE:
                _index_notice(request, listed["uri"], notice)
    return len(notices)
