"""Records read, and written through Kinto's own ``Record`` resource (as kinto-attachment
does), on the request that does the work, so ``last_modified`` moves, collection schemas
apply, and ResourceChanged is notified inside the write's transaction. The plugin never adds
anyone to a record's permissions: its writes leave the ACL as the step's author set it."""

import contextlib
import copy
import json
import logging
import time

from kinto.core.storage.exceptions import IntegrityError, ObjectNotFoundError
from kinto.views.buckets import Bucket
from kinto.views.collections import Collection
from kinto.views.records import Record
from pyramid import httpexceptions

from stepfunction.records.locks import SAVEPOINT, rollback_to_savepoint, run_sql, sql_engine
from stepfunction.records.races import retried_race
from stepfunction.records.tasks import TASK, TASK_ID, get_task
from stepfunction.records.uris import collection_uri, record_uri
from stepfunction.schema import RECORD_JSON_SCHEMA, RECORD_UI_SCHEMA


logger = logging.getLogger(__name__)

WRITE_ATTEMPTS = 5


# Keys of ``request.bound_data`` (shared by a batch's sub-requests).
PLUGIN_WRITES = "stepfunction.plugin_writes"  # records the plugin wrote in this request
TRUSTED = "stepfunction.trusted"  # the worker's own requests: it designates steps


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
        run_sql(request, "SAVEPOINT " + SAVEPOINT)
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
