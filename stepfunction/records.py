"""Steps in Kinto: the only module that touches Kinto's resources and storage.

Records are written through Kinto's own ``Record`` resource (as kinto-attachment does), on the
request that does the work, so ``last_modified`` moves, collection schemas apply, and
ResourceChanged is notified inside the write's transaction. The plugin never adds anyone to a
record's permissions: its writes leave the ACL as the step's author set it.

Task tokens are kept apart from records, as private storage objects that no Kinto endpoint
serves (``resource_name = "stepfunction-task"``, one per record); a record shows
``TOKEN_MASK`` where its token is.
"""

import contextlib
import copy
import hashlib
import json
import logging
import re
import threading
import time

from kinto.core.storage import Filter, Sort
from kinto.core.storage.exceptions import IntegrityError, ObjectNotFoundError, UnicityError
from kinto.core.utils import COMPARISON
from kinto.views.buckets import Bucket
from kinto.views.collections import Collection
from kinto.views.records import Record
from pyramid import httpexceptions

from stepfunction.schema import ANSWERS, RECORD_JSON_SCHEMA, RECORD_UI_SCHEMA, TIMED_OUT
from stepfunction.schema import CLOSED as CLOSED_WITH_EXECUTION


logger = logging.getLogger(__name__)

RECORD_PATH = "/buckets/{bucket_id}/collections/{collection_id}/records/{id}"
RECORD_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")  # Kinto's record ids
WRITE_ATTEMPTS = 5
SAVEPOINT = "stepfunction_write"  # where a write lost to Kinto's timestamp race starts again
TASK = "stepfunction-task"
TASK_ID = "task"

# Keys of ``request.bound_data`` (shared by a batch's sub-requests).
PLUGIN_WRITES = "stepfunction.plugin_writes"  # records the plugin wrote in this request
TRUSTED = "stepfunction.trusted"  # the worker's own requests: it designates steps


def record_uri(bucket_id, collection_id, record_id):
    return RECORD_PATH.format(bucket_id=bucket_id, collection_id=collection_id, id=record_id)


def collection_uri(bucket_id, collection_id):
    return f"/buckets/{bucket_id}/collections/{collection_id}"


# --- Records --------------------------------------------------------------------------------


def read_record(request, bucket_id, collection_id, record_id):
    """The stored record (without its permissions), or None."""
    try:
        return request.registry.storage.get(
            resource_name="record",
            parent_id=collection_uri(bucket_id, collection_id),
            object_id=record_id,
        )
    except ObjectNotFoundError:
        return None


# The record, its task and its collection in one round trip (PostgreSQL), as ``storage.get``
# would return each of them.
_READ_STEP = """
SELECT resource_name, as_epoch(last_modified) AS last_modified, data
  FROM objects
 WHERE NOT deleted
   AND ((resource_name = 'record' AND parent_id = :collection AND id = :record_id)
     OR (resource_name = :task AND parent_id = :uri AND id = :task_id)
     OR (resource_name = 'collection' AND parent_id = :bucket AND id = :collection_id))
"""


def read_step(request, bucket_id, collection_id, record_id):
    """``(record, task)``: the stored record (or None) and its task object (or None).

    On PostgreSQL one statement reads both, and the record's collection: it is left where
    Kinto's ``Record`` resource looks for it first (``request.bound_data["collections"]``, as
    in a batch), so that the answer's write does not read it again. Elsewhere, two reads.
    """
    storage = request.registry.storage
    if sql_engine(storage) is None:
        record = read_record(request, bucket_id, collection_id, record_id)
        uri = record_uri(bucket_id, collection_id, record_id)
        return record, get_task(request, uri) if record is not None else None
    from sqlalchemy import text

    collection = collection_uri(bucket_id, collection_id)
    ids = {"record": record_id, TASK: TASK_ID, "collection": collection_id}
    params = {
        "collection": collection,
        "record_id": record_id,
        "task": TASK,
        "uri": record_uri(bucket_id, collection_id, record_id),
        "task_id": TASK_ID,
        "bucket": f"/buckets/{bucket_id}",
        "collection_id": collection_id,
    }
    with storage.client.connect(readonly=True) as session:
        rows = session.execute(text(_READ_STEP), params).fetchall()
    found = {}
    for row in rows:
        data = row.data if isinstance(row.data, dict) else json.loads(row.data)
        found[row.resource_name] = {
            **data,
            "id": ids[row.resource_name],
            "last_modified": row.last_modified,
        }
    if "collection" in found:
        request.bound_data.setdefault("collections", {}).setdefault(
            collection, found["collection"]
        )
    task = found.get(TASK)
    return found.get("record"), task if task and "token" in task else None


class _Context:
    """What a resource asks of its route context: where its object's permissions live."""

    def __init__(self, uri):
        self.uri = uri
        self.current_object = None

    def get_permission_object_id(self, request, object_id=None):
        return self.uri


@contextlib.contextmanager
def _as(request, matchdict, resource_name, body):
    """``request`` as the request of a write of that object, for Kinto's resource."""
    attributes = {
        "matchdict": matchdict,
        "current_resource_name": resource_name,  # reified by Kinto from the matched route
        "validated": {"body": body, "header": {}, "querystring": {}},
    }
    saved = {name: request.__dict__[name] for name in attributes if name in request.__dict__}
    request.__dict__.update(attributes)
    try:
        yield
    finally:
        for name in attributes:
            request.__dict__.pop(name, None)
        request.__dict__.update(saved)


def write_record(
    request, bucket_id, collection_id, record_id, data, create=False, savepoint=True, acl=None
):
    """PATCH the record's ``data`` (or create it with ``{"data", "permissions"}``); ``acl``:
    the permissions it replaces too (``{"write": [...]}``: a delegation, an escalation).

    The write is the plugin's own: the guard lets it change the fields that only the plugin
    writes. Returns the record as stored. ``savepoint=False``: the caller set the savepoint
    (``record_lock(..., savepoint=True)``) and wrote nothing since.
    """
    body = data if create else {"data": data, **({"permissions": acl} if acl else {})}
    matchdict = {"bucket_id": bucket_id, "collection_id": collection_id, "id": record_id}
    uri = record_uri(bucket_id, collection_id, record_id)
    transactional = sql_engine(request.registry.storage) is not None
    if transactional and savepoint:
        _sql(request, "SAVEPOINT " + SAVEPOINT)
    for attempt in range(WRITE_ATTEMPTS):
        # Two writes in one collection can pick the same ``last_modified``: Kinto then
        # raises IntegrityError. This write follows an answer Step Functions accepted: it
        # is tried again from the savepoint rather than lost to that race.
        try:
            with _as(request, matchdict, "record", body), retried_race(attempt):
                resource = Record(request, context=_Context(uri))
                resource.object_id = record_id
                resource.model.explicit_perm = False  # never make the writer an owner
                result = resource.put() if create else resource.patch()
            break
        except IntegrityError:
            if not transactional or attempt + 1 == WRITE_ATTEMPTS:
                logger.error("%s: lost Kinto's timestamp race %d time(s)", uri, attempt + 1)
                raise
            rollback_to_savepoint(request)
            time.sleep(0.002 * 2**attempt)
    request.bound_data.setdefault(PLUGIN_WRITES, []).append(result["data"])
    return result["data"]


def collection_exists(request, bucket_id, collection_id):
    try:
        request.registry.storage.get(
            resource_name="collection", parent_id=f"/buckets/{bucket_id}", object_id=collection_id
        )
    except ObjectNotFoundError:
        return False
    return True


def validate_new_record(request, data):
    """Kinto's own checks of a record about to be created on this request's route (the
    collection's and bucket's JSON schemas, when validation is on): its 400, or nothing."""
    with _as(request, request.matchdict, "record", {"data": copy.deepcopy(data)}):
        Record(request, context=request.context).process_object(copy.deepcopy(data))


def rollback_to_savepoint(request):
    """Undo what was written since ``record_lock(..., savepoint=True)`` (PostgreSQL)."""
    _sql(request, "ROLLBACK TO SAVEPOINT " + SAVEPOINT)


def _sql(request, statement, **params):
    from sqlalchemy import text

    with request.registry.storage.client.connect() as session:
        session.execute(text(statement), params)


# Kinto logs, at ERROR, the IntegrityError of its timestamp race before raising it; the
# plugin tries such a write again, and says so itself (at ERROR) only once it gives up.
_RETRYING = threading.local()
RACE_LOGGER = "kinto.core.storage.postgresql.client"


class _RaceFilter(logging.Filter):
    def filter(self, record):
        if getattr(_RETRYING, "active", False) and record.levelno >= logging.ERROR:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info = record.exc_text = None
            return logging.getLogger(RACE_LOGGER).isEnabledFor(logging.DEBUG)
        return True


logging.getLogger(RACE_LOGGER).addFilter(_RaceFilter())


@contextlib.contextmanager
def retried_race(attempt=0):
    """Kinto's ERROR for a write about to be tried again is logged at DEBUG instead."""
    previous = getattr(_RETRYING, "active", False)
    _RETRYING.active = True
    try:
        yield
    except IntegrityError:
        logger.debug("Kinto's timestamp race (attempt %d): trying again", attempt + 1)
        raise
    finally:
        _RETRYING.active = previous


def written_by_plugin(request, record):
    """Whether ``record`` (an event's ``new``) is one the plugin wrote in this request."""
    if request.bound_data.get(TRUSTED):
        return True
    return any(record is written for written in request.bound_data.get(PLUGIN_WRITES, ()))


def ensure_collection(request, bucket_id, collection_id):
    """Create the bucket and the collection (with the record schemas) when missing.

    Created with no owner (there is no user): their permissions are the admin's to give.
    """
    storage = request.registry.storage
    bucket = f"/buckets/{bucket_id}"
    wanted = [
        (Bucket, "bucket", "", bucket_id, bucket, {"id": bucket_id}, {"data": {}}),
        (
            Collection,
            "collection",
            bucket,
            collection_id,
            collection_uri(bucket_id, collection_id),
            {"bucket_id": bucket_id, "id": collection_id},
            {"data": {"schema": RECORD_JSON_SCHEMA, "uiSchema": RECORD_UI_SCHEMA}},
        ),
    ]
    created = []
    for resource_class, name, parent_id, object_id, uri, matchdict, body in wanted:
        try:
            storage.get(resource_name=name, parent_id=parent_id, object_id=object_id)
            continue
        except ObjectNotFoundError:
            pass
        with _as(request, matchdict, name, body):
            resource = resource_class(request, context=_Context(uri))
            resource.object_id = object_id
            resource.model.explicit_perm = False
            try:
                resource.put()
            except httpexceptions.HTTPPreconditionFailed:  # pragma: no cover (If-None-Match)
                continue
        created.append(uri)
    return created


# --- Task tokens ----------------------------------------------------------------------------


def _get_private(request, kind, uri, object_id):
    """A private object of the record (``kind`` is its resource name), or None."""
    try:
        return request.registry.storage.get(resource_name=kind, parent_id=uri, object_id=object_id)
    except ObjectNotFoundError:
        return None


def _drop_private(request, kind, uri, object_id):
    try:
        request.registry.storage.delete(
            resource_name=kind, parent_id=uri, object_id=object_id, with_deleted=False
        )
    except ObjectNotFoundError:
        pass


def get_task(request, uri):
    """``{"token", "region", "sent"}`` of the record's pending task, or None."""
    task = _get_private(request, TASK, uri, TASK_ID)
    return task if task and "token" in task else None


def claim_task(request, uri, stale_after):
    """Claim the right to fetch the record's task: one request at a time, across processes.

    Returns the task if one is stored already, else whether this call got the claim (a claim
    older than ``stale_after`` seconds, left by a crash, is taken over).
    """
    storage = request.registry.storage
    claim = {"id": TASK_ID, "record_id": uri.rsplit("/", 1)[1], "claimed_at": time.time()}
    try:
        storage.create(resource_name=TASK, parent_id=uri, obj=claim)
        return True
    except UnicityError:
        pass
    current = storage.get(resource_name=TASK, parent_id=uri, object_id=TASK_ID)
    if "token" in current:
        return current
    if time.time() - current.get("claimed_at", 0) < stale_after:
        return False
    storage.update(resource_name=TASK, parent_id=uri, object_id=TASK_ID, obj=claim)
    return True


def put_task(request, uri, token, **extra):
    """Keep the record's task token (and what the plugin knows of its sends)."""
    task = {"token": token, "record_id": uri.rsplit("/", 1)[1], **extra}
    request.registry.storage.update(resource_name=TASK, parent_id=uri, object_id=TASK_ID, obj=task)


def close_task(request, uri, status, task=None):
    """The record's task is answered or gone: kept, marked closed, so that a late answer
    knows without asking AWS. ``task``: as read before, if it was."""
    task = task or get_task(request, uri)
    if task is not None:
        request.registry.storage.update(
            resource_name=TASK, parent_id=uri, object_id=TASK_ID, obj={**task, "closed": status}
        )


def drop_task(request, uri):
    """Forget the record's task token: the task is answered or gone, or the record deleted."""
    _drop_private(request, TASK, uri, TASK_ID)


def pending_tasks(request, bucket_id, collection_id):
    """``[(record_id, task)]`` of every record of the collection that holds a task token."""
    parent = collection_uri(bucket_id, collection_id) + "/records/*"
    tasks = request.registry.storage.list_all(resource_name=TASK, parent_id=parent)
    return [(t["record_id"], t) for t in tasks if "token" in t and not t.get("closed")]


# --- Notices (mails to reviewers) -----------------------------------------------------------

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
    return _get_private(request, NOTICE, uri, NOTICE_ID)


def _outbox_id(uri):
    return hashlib.blake2b(uri.encode("utf-8"), digest_size=16).hexdigest()


def put_notice(request, uri, notice):
    """Store the step's notice, and keep it in the outbox's index while it may be due."""
    notice = {**notice, "id": NOTICE_ID, "uri": uri}
    notice.pop("last_modified", None)
    storage = request.registry.storage
    storage.update(resource_name=NOTICE, parent_id=uri, object_id=NOTICE_ID, obj=notice)
    if notice["due"] < NEVER_DUE:
        _index_notice(request, uri, notice)
    else:
        _drop_private(request, OUTBOX, OUTBOX_PARENT, _outbox_id(uri))


def _index_notice(request, uri, notice):
    # ``since``: when its longest-waiting mail became due, failed sends or not (the heartbeat's).
    since = min(notice.get("since", notice["due"]), notice["due"])
    entry = {"uri": uri, "due": notice["due"], "lease": notice.get("lease", 0), "since": since}
    request.registry.storage.update(
        resource_name=OUTBOX, parent_id=OUTBOX_PARENT, object_id=_outbox_id(uri), obj=entry
    )


def drop_notice(request, uri):
    _drop_private(request, NOTICE, uri, NOTICE_ID)
    _drop_private(request, OUTBOX, OUTBOX_PARENT, _outbox_id(uri))


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


def parse_record_uri(uri):
    """``(bucket_id, collection_id, record_id)`` of a record URI."""
    parts = uri.split("/")
    return parts[2], parts[4], parts[6]


# --- Escalations (a step unanswered too long gets more reviewers) ---------------------------

ESCALATION = "stepfunction-escalation"
ESCALATIONS_PARENT = "/stepfunction/escalations"


def get_escalation(request, uri):
    """``{"uri", "since", "due"}``: when the pending step ``uri`` escalates, or None."""
    return _get_private(request, ESCALATION, ESCALATIONS_PARENT, _outbox_id(uri))


def put_escalation(request, uri, since, due):
    entry = {"id": _outbox_id(uri), "uri": uri, "since": since, "due": due}
    request.registry.storage.update(
        resource_name=ESCALATION, parent_id=ESCALATIONS_PARENT, object_id=entry["id"], obj=entry
    )


def drop_escalation(request, uri):
    _drop_private(request, ESCALATION, ESCALATIONS_PARENT, _outbox_id(uri))


def due_escalations(request, now, limit):
    """The escalations due at ``now``, soonest first (one indexed query on PostgreSQL)."""
    return request.registry.storage.list_all(
        resource_name=ESCALATION,
        parent_id=ESCALATIONS_PARENT,
        filters=[Filter("due", now, COMPARISON.MAX)],
        sorting=[Sort("due", 1)],
        limit=limit,
    )


# --- Locks ----------------------------------------------------------------------------------

# Striped locks for the memory backend, which lives in one process.
_LOCAL_LOCKS = [threading.RLock() for _ in range(64)]  # re-entered by a vote


def _lock_key(uri):
    digest = hashlib.blake2b(uri.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def sql_engine(backend):
    """The SQLAlchemy engine of a Kinto PostgreSQL backend, None for other backends."""
    client = getattr(backend, "client", None)
    return getattr(getattr(client, "session_factory", None), "bind", None)


@contextlib.contextmanager
def record_lock(request, uri, savepoint=False):
    """Serialise the last read and the write of one record, across threads and processes.

    On PostgreSQL, a transaction-level advisory lock on the request's own connection: it is
    released when that transaction commits or aborts, and takes no other connection. Never
    held across an AWS call: take it after the call, then read the record again.
    ``savepoint``: also set ``write_record``'s savepoint, in the same round trip.
    """
    storage = request.registry.storage
    if sql_engine(storage) is None:
        with _LOCAL_LOCKS[_lock_key(uri) % len(_LOCAL_LOCKS)]:
            yield
        return
    statement = "SELECT pg_advisory_xact_lock(:key)"
    if savepoint:
        statement += "; SAVEPOINT " + SAVEPOINT
    _sql(request, statement, key=_lock_key(uri))
    yield


def hide_sql_parameters(registry):
    """Keep SQL parameters out of database error messages, which Kinto logs."""
    for backend in (registry.storage, registry.permission, registry.cache):
        engine = sql_engine(backend)
        if engine is not None:
            engine.hide_parameters = True


def is_author(request, bucket_id, collection_id):
    """Whether the request's user may write the whole collection (or its bucket)."""
    principals = request.prefixed_principals
    bound = {
        (f"/buckets/{bucket_id}", "write"),
        (collection_uri(bucket_id, collection_id), "write"),
    }
    return request.registry.permission.check_permission(principals, bound)


def answering_principals(request, uri, candidates=()):
    """The principals that may write the record ``uri`` (its own ACL, its collection's or its
    bucket's), and those of ``candidates`` (user principals) that may through a group."""
    bucket_id, collection_id, _ = parse_record_uri(uri)
    bound = [
        (uri, "write"),
        (collection_uri(bucket_id, collection_id), "write"),
        (f"/buckets/{bucket_id}", "write"),
    ]
    permission = request.registry.permission
    principals = set(permission.get_authorized_principals(bound))
    for candidate in candidates:
        if set(permission.get_user_principals(candidate)) & principals:
            principals.add(candidate)
    return principals


# --- Inbox ----------------------------------------------------------------------------------

# A record with another status, or none, is pending.
CLOSED = (*ANSWERS, TIMED_OUT, CLOSED_WITH_EXECUTION)


def writable_record_ids(request, bucket_id, collection_id):
    """Ids of the collection's records whose own ACL lets the request's user write them.

    One query on the permission backend: it returns ids, not records.
    """
    prefix = record_uri(bucket_id, collection_id, "")
    accessible = request.registry.permission.get_accessible_objects(
        request.prefixed_principals, [(prefix + "*", "write")], with_children=False
    )
    ids = set()
    for uri in accessible:
        # The pattern is a LIKE on PostgreSQL, where ``_`` in an id matches any character:
        # only this very collection's records count.
        record_id = uri[len(prefix) :] if uri.startswith(prefix) else ""
        if RECORD_ID.fullmatch(record_id):
            ids.add(record_id)
    return ids


def pending_records(request, bucket_id, collection_id, limit, before=None, ids=None):
    """Up to ``limit`` unanswered records, newest first, modified before ``before`` (if given),
    among ``ids`` (if given): the storage backend filters, sorts and limits."""
    if ids is not None and not ids:
        return []
    filters = [Filter("status", list(CLOSED), COMPARISON.EXCLUDE)]
    if ids is not None:
        filters.append(Filter("id", sorted(ids), COMPARISON.IN))
    if before is not None:
        filters.append(Filter("last_modified", before, COMPARISON.LT))
    return request.registry.storage.list_all(
        resource_name="record",
        parent_id=collection_uri(bucket_id, collection_id),
        filters=filters,
        sorting=[Sort("last_modified", -1)],
        limit=limit,
    )


# --- Executions -----------------------------------------------------------------------------


def execution_steps(request, bucket_id, collection_id, execution_arn=None, limit=None, after=None):
    """Pending steps of the collection that name an execution (that one, if given), oldest
    first, modified after ``after`` (a ``last_modified``, to page through them)."""
    filters = [
        Filter("status", list(CLOSED), COMPARISON.EXCLUDE),
        Filter("executionArn", execution_arn, COMPARISON.EQ)
        if execution_arn
        else Filter("executionArn", True, COMPARISON.HAS),
    ]
    if after is not None:
        filters.append(Filter("last_modified", after, COMPARISON.GT))
    return request.registry.storage.list_all(
        resource_name="record",
        parent_id=collection_uri(bucket_id, collection_id),
        filters=filters,
        sorting=[Sort("last_modified", 1)],
        limit=limit,
    )


def records_with_status(request, bucket_id, collection_id, status, limit, after=None):
    """Records of the collection with that ``status``, oldest first, modified after
    ``after`` (to page through them)."""
    filters = [Filter("status", status, COMPARISON.EQ)]
    if after is not None:
        filters.append(Filter("last_modified", after, COMPARISON.GT))
    return request.registry.storage.list_all(
        resource_name="record",
        parent_id=collection_uri(bucket_id, collection_id),
        filters=filters,
        sorting=[Sort("last_modified", 1)],
        limit=limit,
    )


# --- Steps and people, for the dashboard ----------------------------------------------------

PERSON = "stepfunction-person"  # private objects: a principal's readable name
PEOPLE = "/stepfunction/people"


def may_read_all(request, bucket_id, collection_id):
    """Whether the request's user may read every record of the collection."""
    uris = (f"/buckets/{bucket_id}", collection_uri(bucket_id, collection_id))
    bound = {(uri, perm) for uri in uris for perm in ("read", "write")}
    return request.registry.permission.check_permission(request.prefixed_principals, bound)


def readable_record_ids(request, bucket_id, collection_id):
    """Ids of the records whose own ACL lets the request's user read them (read or write)."""
    prefix = record_uri(bucket_id, collection_id, "")
    accessible = request.registry.permission.get_accessible_objects(
        request.prefixed_principals,
        [(prefix + "*", "read"), (prefix + "*", "write")],
        with_children=False,
    )
    ids = {uri[len(prefix) :] for uri in accessible if uri.startswith(prefix)}
    return {record_id for record_id in ids if RECORD_ID.fullmatch(record_id)}


def steps(request, bucket_id, collection_id, limit, pending, before=None, ids=None):
    """Up to ``limit`` records newest first (unanswered ones only if ``pending``), modified
    before ``before`` (if given), among ``ids`` (if given); and how many match in all."""
    if ids is not None and not ids:
        return [], 0
    filters = [Filter("status", list(CLOSED), COMPARISON.EXCLUDE)] if pending else []
    if ids is not None:
        filters.append(Filter("id", sorted(ids), COMPARISON.IN))
    parent_id = collection_uri(bucket_id, collection_id)
    total = request.registry.storage.count_all(
        resource_name="record", parent_id=parent_id, filters=filters
    )
    if before is not None:
        filters.append(Filter("last_modified", before, COMPARISON.LT))
    page = request.registry.storage.list_all(
        resource_name="record",
        parent_id=parent_id,
        filters=filters,
        sorting=[Sort("last_modified", -1)],
        limit=limit,
    )
    return page, total


def record_writers(request, bucket_id, collection_id, record_ids):
    """``{record id: principals with write on the record itself}``, in one query."""
    uris = [record_uri(bucket_id, collection_id, i) for i in record_ids]
    acls = request.registry.permission.get_objects_permissions(uris)  # memory: all or none
    return {i: set(acl.get("write", ())) for i, acl in zip(record_ids, acls, strict=True)}


def author_principals(request, bucket_id, collection_id):
    """Principals with write on the collection or its bucket: the steps' authors."""
    permission = request.registry.permission
    uris = (f"/buckets/{bucket_id}", collection_uri(bucket_id, collection_id))
    return set().union(*(permission.get_object_permission_principals(u, "write") for u in uris))


def person_id(principal):
    return hashlib.sha256(principal.encode()).hexdigest()[:40]


def get_names(request, principals):
    """``{principal: name}`` of those whose name was recorded."""
    ids = sorted({person_id(p) for p in principals})
    if not ids:
        return {}
    found = request.registry.storage.list_all(
        resource_name=PERSON, parent_id=PEOPLE, filters=[Filter("id", ids, COMPARISON.IN)]
    )
    return {p["principal"]: p["name"] for p in found if p.get("principal") in principals}


def put_name(request, principal, name):
    request.registry.storage.update(
        resource_name=PERSON,
        parent_id=PEOPLE,
        object_id=person_id(principal),
        obj={"principal": principal, "name": name},
    )
