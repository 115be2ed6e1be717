"""Manual-step records, read and written through Kinto's own Record resource.

Writing through the resource (rather than raw storage) is what makes ``last_modified`` move,
collection schemas apply, and events fire, so that ``kinto.plugins.history`` and other
listeners see who answered.
"""

import contextlib
import hashlib
import logging
import threading
import time

import transaction
from kinto.core.cornice.errors import Errors
from kinto.core.errors import ERRORS, http_error
from kinto.core.storage.exceptions import IntegrityError, ObjectNotFoundError
from kinto.core.utils import build_request
from kinto.views.records import Record
from pyramid import httpexceptions
from pyramid.request import Request, apply_request_extensions
from pyramid.threadlocal import manager as threadlocal_manager


logger = logging.getLogger(__name__)

RECORD_PATH = "/buckets/{bucket_id}/collections/{collection_id}/records/{id}"

# The statuses a record goes through; the two answers are also what a reviewer POSTs.
UNANSWERED, SUCCEED, FAIL, TIMED_OUT = "UNANSWERED", "SUCCEED", "FAIL", "TIMED_OUT"
ANSWERS = (SUCCEED, FAIL)

COMMIT_ATTEMPTS = 5
BODY_HEADERS = {"Content-Length", "Content-Type", "Transfer-Encoding"}


def record_uri(bucket_id, collection_id, record_id):
    return RECORD_PATH.format(bucket_id=bucket_id, collection_id=collection_id, id=record_id)


class _ObjectContext:
    """What a resource asks of its route context: where its object's permissions live."""

    current_object = None

    def __init__(self, uri):
        self.uri = uri

    def get_permission_object_id(self, request, object_id=None):
        return self.uri


def kinto_resource(
    request, resource_class, resource_name, uri, matchdict, method="GET", body=None, header=None
):
    """Kinto's resource for one object (``uri``), on a sub-request of ``request``.

    The sub-request carries the request's credentials (the same user writes) and shares its
    bound data, so the resource's events are notified with the request's own. Raises 404 in
    Kinto's format when a parent does not exist.
    """
    subrequest = build_request(request, {"method": method, "path": uri})
    subrequest.matchdict = matchdict
    subrequest.current_resource_name = resource_name
    subrequest.validated = {"body": body or {}, "header": header or {}, "querystring": {}}
    subrequest.errors = Errors()  # where Kinto reports a rejected write (id, schema) from
    resource = resource_class(subrequest, context=_ObjectContext(uri))
    resource.object_id = matchdict["id"]
    if subrequest.prefixed_userid is None:
        # A write with no user (the worker's) must not make ``system.Everyone`` an owner.
        resource.model.explicit_perm = False
    return resource


def record_resource(request, bucket_id, collection_id, record_id, method="GET", body=None):
    """Kinto's Record resource for that record (see ``kinto_resource``)."""
    matchdict = {"bucket_id": bucket_id, "collection_id": collection_id, "id": record_id}
    uri = record_uri(bucket_id, collection_id, record_id)
    return kinto_resource(request, Record, "record", uri, matchdict, method, body)


def not_found(record_id):
    details = {"id": record_id, "resource_name": "record"}
    return http_error(
        httpexceptions.HTTPNotFound(), errno=ERRORS.INVALID_RESOURCE_ID, details=details
    )


def get_record(request, bucket_id, collection_id, record_id):
    """The stored record, or Kinto's own 404 for it, its collection or its bucket."""
    resource = record_resource(request, bucket_id, collection_id, record_id)
    try:
        record = resource.model.get_object(record_id)
    except ObjectNotFoundError:
        raise not_found(record_id) from None
    record.pop(resource.model.permissions_field, None)
    return record


def patch_record(request, bucket_id, collection_id, record_id, changes):
    """Apply ``changes`` to the record's data as a PATCH would; returns {"data", ...}."""
    resource = record_resource(
        request, bucket_id, collection_id, record_id, method="PATCH", body={"data": changes}
    )
    return resource.patch()


def base_request(registry, headers=None):
    """A request of its own to drive Kinto's resources with, outside the HTTP request.

    ``headers`` (an HTTP request's) make its writes those of that request's user; without
    them there is no user (the worker).
    """
    request = Request.blank(f"/{registry.route_prefix}/", headers=headers)
    request.registry = registry
    apply_request_extensions(request)
    return request


def _committed(work):
    """``work()`` in a transaction, run again when Kinto's timestamps race.

    Concurrent writes under one parent can pick the same ``last_modified``: Kinto then raises
    IntegrityError and asks to retry, and a write that Step Functions depends on must not be
    lost to that.
    """
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            with transaction.manager:
                return work()
        except IntegrityError:
            if attempt + 1 == COMMIT_ATTEMPTS:
                raise
            time.sleep(0.01 * 2**attempt)


def write_committed(registry, func, *args, headers=None):
    """``func(base, *args)`` committed in a transaction of its own, its events notified.

    The events go out as a request would send them, but the write is committed first:
    ResourceChanged (history...) in a second transaction, so that no listener can undo what
    Step Functions already knows; AfterResourceChanged (kinto-emailer...) at the end.
    ``headers``: an HTTP request's, to write as its user; without them there is no user.
    """
    threadlocal_manager.push({"request": None, "registry": registry})
    try:

        def work():
            base = base_request(registry, headers)
            threadlocal_manager.get()["request"] = base
            return base, func(base, *args)

        base, result = _committed(work)
        changes = list(base.get_resource_events())
        _committed(lambda: [registry.notify(event) for event in changes])
    finally:
        threadlocal_manager.pop()
    for event in base.get_resource_events(after_commit=True):
        try:
            registry.notify(event)
        except Exception:
            logger.exception("a listener of %s failed after commit", type(event).__name__)
    return result


def in_own_transaction(request, func, *args):
    """``write_committed`` for a request thread, as the request's user.

    The request's transaction is rolled back with any error response, but a task token that
    Step Functions handed out, or an answer it accepted, must stay recorded whatever happens
    next. Transactions are per thread (pyramid_tm and zope.sqlalchemy both use the
    thread-local manager), so the work runs on a short-lived thread of its own.
    """
    headers = {k: v for k, v in request.headers.items() if k not in BODY_HEADERS}
    outcome = {}

    def run():
        try:
            outcome["result"] = write_committed(request.registry, func, *args, headers=headers)
        except BaseException as e:  # handed back to the calling thread below
            outcome["error"] = e

    thread = threading.Thread(target=run, name="stepfunction-commit")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


# Striped locks for backends that live in one process (memory): a bounded set, shared by
# the records whose URIs hash alike.
_LOCAL_LOCKS = [threading.Lock() for _ in range(64)]


def _lock_key(uri):
    digest = hashlib.blake2b(uri.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def sql_engine(backend):
    """The SQLAlchemy engine of a Kinto PostgreSQL backend, None for other backends."""
    client = getattr(backend, "client", None)
    return getattr(getattr(client, "session_factory", None), "bind", None)


def hide_sql_parameters(registry):
    """Keep SQL parameters out of database error messages, which Kinto logs.

    Records hold task tokens: a failed write would otherwise log one in full.
    """
    for backend in (registry.storage, registry.permission, registry.cache):
        engine = sql_engine(backend)
        if engine is not None:
            engine.hide_parameters = True


@contextlib.contextmanager
def record_lock(registry, uri):
    """Serialise the work on one record across threads and Kinto processes.

    On PostgreSQL this is a session-level advisory lock on a connection of its own, so it
    holds across the transactions committed inside it and across processes.
    """
    engine = sql_engine(registry.storage)
    if engine is None:
        with _LOCAL_LOCKS[_lock_key(uri) % len(_LOCAL_LOCKS)]:
            yield
        return

    from sqlalchemy import text

    key = {"key": _lock_key(uri)}
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
            connection.commit()
