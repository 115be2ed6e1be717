"""One record's read and write serialised (``record_lock``), across threads and processes;
the SQL that takes the lock and the write's savepoint on PostgreSQL."""

import contextlib
import hashlib
import threading


SAVEPOINT = "stepfunction_write"  # where a write lost to Kinto's timestamp race starts again


def rollback_to_savepoint(request, name=SAVEPOINT):
    """Undo what was written since ``record_lock(..., savepoint=True)``, or since
    ``take_savepoint(request, name)`` (PostgreSQL)."""
    run_sql(request, "ROLLBACK TO SAVEPOINT " + name)


def take_savepoint(request, name):
    """Where ``rollback_to_savepoint(request, name)`` starts again (PostgreSQL only)."""
    run_sql(request, "SAVEPOINT " + name)


def run_sql(request, statement, **params):
    from sqlalchemy import text

    with request.registry.storage.client.connect() as session:
        session.execute(text(statement), params)


# Striped locks for the memory backend, which lives in one process.
_LOCAL_LOCKS = [threading.RLock() for _ in range(64)]  # re-entered by a vote


def _lock_key(uri):
    digest = hashlib.blake2b(uri.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def sql_engine(backend):
    """The SQLAlchemy engine of a Kinto PostgreSQL backend, None for other backends."""
    client = getattr(backend, "client", None)
    return getattr(getattr(client, "session_factory", None), "bind", None)


# Held across an AWS call (a webhook's StartExecution): never one of the records' stripes.
_DELIVERY_LOCKS = [threading.Lock() for _ in range(16)]


@contextlib.contextmanager
def delivery_lock(request, key):
    """Serialise what may start one execution (``key``: e.g. a webhook's signed body), across
    threads and processes, until the request's transaction ends. Unlike ``record_lock`` it
    is held across StartExecution: only deliveries of the same key wait for it (on the memory
    backend, also the few whose key shares its stripe)."""
    if sql_engine(request.registry.storage) is None:
        with _DELIVERY_LOCKS[_lock_key(key) % len(_DELIVERY_LOCKS)]:
            yield
        return
    run_sql(request, "SELECT pg_advisory_xact_lock(:key)", key=_lock_key("delivery:" + key))
    yield


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
    run_sql(request, statement, key=_lock_key(uri))
    yield


def hide_sql_parameters(registry):
    """Keep SQL parameters out of database error messages, which Kinto logs."""
    for backend in (registry.storage, registry.permission, registry.cache):
        engine = sql_engine(backend)
        if engine is not None:
            engine.hide_parameters = True
