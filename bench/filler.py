"""A Kinto include for the benchmark only: filler records, written straight into storage.

``POST /v1/__bench__/fill`` with ``X-Bench-Secret: <bench.fill_secret>`` and
``{"parent_id": "/buckets/b/collections/c", "count": N}`` adds N manual-step records to that
collection (``subject``, ``stateMachineArn``, ``taskToken`` as records show it, and
``status``: one in ten ``UNANSWERED``, one in ten ``FAIL``, the rest ``SUCCEED``), without
ACLs, events, history or the plugin's private task objects: Kinto's resources would take
minutes for 100,000 records. On PostgreSQL it is one ``INSERT … SELECT`` with timestamps older
than the collection's oldest record; on the memory backend, ``storage.create`` in a loop.
Without ``bench.fill_secret`` nothing is added.
"""

import hmac
import time
import uuid

from pyramid import httpexceptions


MACHINE = "arn:aws:states:us-west-2:123456789012:stateMachine:BenchFiller"
try:  # what a record shows in place of its token, since tokens are kept out of records
    from stepfunction.schema import TOKEN_MASK
except ImportError:
    TOKEN_MASK = None


def status_of(i):
    return "UNANSWERED" if i % 10 == 0 else "FAIL" if i % 10 == 1 else "SUCCEED"


def fill_memory(storage, parent_id, count):
    for i in range(count):
        data = {
            "subject": f"Filler step {i}",
            "stateMachineArn": MACHINE,
            "taskToken": TOKEN_MASK or str(uuid.uuid4()),
            "status": status_of(i),
        }
        storage.create(resource_name="record", parent_id=parent_id, obj=data)


INSERT = """
INSERT INTO objects (id, parent_id, resource_name, last_modified, data, deleted)
SELECT md5(:parent_id || :salt || i)::uuid::text, :parent_id, 'record',
       from_epoch(:oldest - i),
       jsonb_build_object(
         'subject', 'Filler step ' || i,
         'stateMachineArn', CAST(:machine AS TEXT),
         'taskToken', COALESCE(CAST(:mask AS TEXT), md5(:salt || i)::uuid::text),
         'status', CASE WHEN i % 10 = 0 THEN 'UNANSWERED' WHEN i % 10 = 1 THEN 'FAIL'
                        ELSE 'SUCCEED' END),
       FALSE
  FROM generate_series(1, :count) AS i
"""

SUPERUSER = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
OLDEST = """
SELECT as_epoch(MIN(last_modified)) FROM objects
 WHERE parent_id = :parent_id AND resource_name = 'record'
"""


def fill_postgresql(storage, parent_id, count):
    from sqlalchemy import text

    with storage.client.connect() as connection:
        if connection.execute(text(SUPERUSER)).scalar():
            # Without the timestamp trigger, which costs a query per row (explicit timestamps
            # are given). For this transaction only.
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        oldest = connection.execute(text(OLDEST), {"parent_id": parent_id}).scalar()
        oldest = oldest or int(time.time() * 1000)
        params = {
            "parent_id": parent_id,
            "salt": uuid.uuid4().hex,
            "oldest": oldest,
            "machine": MACHINE,
            "mask": TOKEN_MASK,
            "count": count,
        }
        connection.execute(text(INSERT), params)


def fill(request):
    secret = request.registry.settings["bench.fill_secret"]
    if not hmac.compare_digest(request.headers.get("X-Bench-Secret", ""), secret):
        raise httpexceptions.HTTPForbidden()
    body = request.json_body
    parent_id, count = body["parent_id"], int(body["count"])
    storage = request.registry.storage
    started = time.monotonic()
    if hasattr(storage, "client"):
        fill_postgresql(storage, parent_id, count)
    else:
        fill_memory(storage, parent_id, count)
    return {"added": count, "seconds": round(time.monotonic() - started, 3)}


def includeme(config):
    if not config.get_settings().get("bench.fill_secret"):
        return
    config.add_route("bench_fill", "/__bench__/fill")
    config.add_view(fill, route_name="bench_fill", request_method="POST", renderer="json")
