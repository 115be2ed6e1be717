"""The outbox's pass beside many closed steps: its cost must not grow with them.

In this process, on the backend's storage (Kinto's memory backend, or the benchmark's
PostgreSQL after ``kinto migrate``): 10 steps due a mail, then ``closed`` closed steps'
notices (as the plugin keeps them: one per step, under the step's record, never due again).
Measured with 0 closed, then with ``closed`` closed, alternating nothing: the due query alone
(what every pass runs, once a second when idle), a whole pass that mails the 10 due steps to
a local SMTP server (``stepfunction.testing.mailbox``), and, for comparison, the query of the
previous version (every notice of every record, filtered on ``due``).
"""

import statistics
import time

import kinto
import transaction

from stepfunction import records
from stepfunction.notices import NEVER, new_notice
from stepfunction.testing.mailbox import Mailbox
from stepfunction.worker import Worker
from stepfunction.worker.outbox import BATCH, send_due


COLLECTION = "/buckets/bench-outbox/collections/steps"
DUE = 10
CHUNK = 5000


class _Bare:
    def __init__(self, registry):
        self.registry = registry


def app_settings(backend, postgresql_url, mailbox):
    settings = {
        **kinto.DEFAULT_SETTINGS,
        "includes": "stepfunction",
        "multiauth.policies": "basicauth",
        "userid_hmac_secret": "bench-secret",
        "stepfunction.aws_region": "us-west-2",
        "stepfunction.aws_access_key": "bench",
        "stepfunction.aws_secret_key": "bench",
        "stepfunction.aws_endpoint_url": "http://127.0.0.1:9",
        "stepfunction.public_url": "http://127.0.0.1/v1/",
        "stepfunction.link_secret": "bench-link-secret-of-at-least-32-characters-xx",
        "stepfunction.worker_in_process": "true" if backend == "memory" else "false",
        "mail.host": "127.0.0.1",
        "mail.port": str(mailbox.port),
        "mail.default_sender": "steps@example.com",
    }
    for kind in ("storage", "permission", "cache"):
        if backend == "memory":
            settings[f"{kind}_backend"] = f"kinto.core.{kind}.memory"
        else:
            settings[f"{kind}_backend"] = f"kinto.core.{kind}.postgresql"
            settings[f"{kind}_url"] = postgresql_url
    return settings


def old_due_query(request, now):
    """The previous version's query: every notice of every record, filtered on ``due``."""
    from kinto.core.storage import Filter, Sort
    from kinto.core.utils import COMPARISON

    return request.registry.storage.list_all(
        resource_name=records.NOTICE,
        parent_id=records.ALL_RECORDS,
        filters=[Filter("due", now, COMPARISON.MAX)],
        sorting=[Sort("due", 1)],
        limit=BATCH,
    )


def add_due_steps(registry):
    request = _Bare(registry)
    with transaction.manager:
        for i in range(DUE):
            data = {"id": f"due-{i}", "reviewer": f"r{i}@example.com", "subject": f"due {i}"}
            registry.storage.create(resource_name="record", parent_id=COLLECTION, obj=data)
            records.put_notice(request, f"{COLLECTION}/records/due-{i}", new_notice(time.time()))


def make_due_again(registry):
    request = _Bare(registry)
    with transaction.manager:
        for i in range(DUE):
            records.put_notice(request, f"{COLLECTION}/records/due-{i}", new_notice(time.time()))


def add_closed(registry, count):
    started = time.monotonic()
    closed = {**new_notice(0), "due": NEVER, "closed": True}
    for start in range(0, count, CHUNK):
        with transaction.manager:
            for i in range(start, min(count, start + CHUNK)):
                uri = f"{COLLECTION}/records/closed-{i}"
                obj = {**closed, "id": records.NOTICE_ID, "uri": uri}
                registry.storage.create(resource_name=records.NOTICE, parent_id=uri, obj=obj)
    engine = records.sql_engine(registry.storage)
    if engine is not None:  # fresh statistics, as autovacuum keeps them
        import sqlalchemy

        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("ANALYZE objects"))
            connection.commit()
    return time.monotonic() - started


def median_seconds(func, repeat):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(registry, worker, mailbox, rounds, queries):
    request = _Bare(registry)

    def query():
        with transaction.manager:
            records.due_notices(request, time.time(), BATCH)

    def old_query():
        with transaction.manager:
            old_due_query(request, time.time())

    passes = []
    for _ in range(rounds):
        make_due_again(registry)
        mailbox.clear()
        started = time.perf_counter()
        send_due(worker)
        passes.append(time.perf_counter() - started)
        assert len(mailbox.messages) == DUE, f"{len(mailbox.messages)} mails, not {DUE}"
    return {
        "pass": statistics.median(passes),
        "query": median_seconds(query, queries),
        "old query": median_seconds(old_query, max(3, queries // 10)),
    }


def outbox_growth(backend, postgresql_url, closed, rounds=5, queries=50):
    """``{"closed": n, "fill": s, 0: {measure: s}, n: {measure: s}}``."""
    with Mailbox() as mailbox:
        wsgi = kinto.main({}, **app_settings(backend, postgresql_url, mailbox))
        registry = wsgi.registry
        for store in (registry.storage, registry.permission, registry.cache):
            store.initialize_schema()
        try:
            existing = getattr(registry, "stepfunction_worker", None)
            if existing is not None:  # the in-process worker: the benchmark drives its own
                existing.stop(timeout=10)
            worker = Worker(registry)
            add_due_steps(registry)
            results = {"closed": closed, 0: measure(registry, worker, mailbox, rounds, queries)}
            results["fill"] = add_closed(registry, closed)
            results[closed] = measure(registry, worker, mailbox, rounds, queries)
            return results
        finally:
            for store in (registry.storage, registry.permission, registry.cache):
                store.flush()
