"""``stepfunction-worker --scrub-tokens CONFIG.ini``: mask the task tokens that records stored
by earlier versions still hold, and the history entries that show them.

Earlier versions kept a token in ``data.taskToken`` (before the mask), and the worker kept a
callback payload that carried its own token in ``input``. For every record of the collections
that hold steps, the tokens it may carry are its stored task's, its own ``data.taskToken``,
and any ``taskToken`` its history entries show: wherever the record carries one, it is
rewritten masked through Kinto's ``Record`` resource (as the plugin writes, in a transaction
of its own, so history then holds the masked version), a raw ``data.taskToken`` moving to
the task the plugin keeps. Then Kinto's history entries of those records are masked in place
(their ``last_modified`` kept). Running it again changes nothing.
"""

import logging
from collections import defaultdict

from kinto.core.storage import Filter, Sort
from kinto.core.utils import COMPARISON
from pyramid.httpexceptions import HTTPException

from stepfunction import records, transactions
from stepfunction.schema import TOKEN_MASK, valid_token
from stepfunction.scrub import holds, scrub
from stepfunction.worker.tasks import describe_http_error


logger = logging.getLogger(__name__)

PAGE = 500


def scrub_stored(registry, page=PAGE):
    """Mask every stored token of the steps collections; ``{"records", "history", "failed"}``
    counts what was rewritten, and what could not be (logged, without its token)."""
    counts = {"records": 0, "history": 0, "failed": 0}
    for bucket_id, collection_id in registry.stepfunction_settings.collections:
        tokens = _tokens_by_uri(registry, bucket_id, collection_id, page)
        parent = records.collection_uri(bucket_id, collection_id)
        for found in _pages(registry, "record", parent, page=page):
            uris = [records.record_uri(bucket_id, collection_id, r["id"]) for r in found]
            acls = registry.permission.get_objects_permissions(uris)
            for record, uri, acl in zip(found, uris, acls, strict=True):
                own = record.get("taskToken")
                tokens[uri] |= {own} if valid_token(own) else set()
                if holds(record, tokens[uri]) or holds(_listed(acl), tokens[uri]):
                    counts["records" if _rewrite(registry, uri, tokens[uri]) else "failed"] += 1
        counts["history"] += _scrub_history(registry, bucket_id, collection_id, tokens, page)
    return counts


def _rewrite(registry, uri, known):
    """Rewrite one record masked, in a transaction of its own; whether it was."""
    try:
        transactions.commit(registry, lambda request: _scrub_record(request, uri, known))
    except Exception as e:  # its data is masked: Kinto's message can't show a token
        why = describe_http_error(e) if isinstance(e, HTTPException) else type(e).__name__
        logger.error("%s: could not be rewritten (%s)", uri, why)
        return False
    logger.info("%s: task token masked", uri)
    return True


def _listed(acl):
    return {name: sorted(principals) for name, principals in acl.items()}


def _tokens_by_uri(registry, bucket_id, collection_id, page):
    """``{record uri: {token}}``: the tasks the plugin keeps, and raw ``taskToken`` values of
    the collection's history entries."""
    tokens = defaultdict(set)
    prefix = records.collection_uri(bucket_id, collection_id) + "/records/"
    for task in registry.storage.list_all(resource_name=records.TASK, parent_id=prefix + "*"):
        if valid_token(task.get("token")):
            tokens[prefix + task["record_id"]].add(task["token"])
    for entry in _history(registry, bucket_id, collection_id, page):
        data = (entry.get("target") or {}).get("data") or {}
        if valid_token(data.get("taskToken")):
            tokens[entry.get("uri")].add(data["taskToken"])
    return tokens


def _scrub_record(request, uri, known):
    """Inside a transaction: rewrite the record masked, keeping a raw ``taskToken`` aside."""
    bucket_id, collection_id, record_id = records.parse_record_uri(uri)
    with records.record_lock(request, uri):
        record = records.read_record(request, bucket_id, collection_id, record_id)
        if record is None:
            return
        own = record.get("taskToken")
        if valid_token(own) and records.get_task(request, uri) is None:
            try:
                region = request.registry.stepfunction_client.region_for(record)
            except ValueError:
                region = None
            records.put_task(request, uri, own, region=region)
        data = scrub({k: v for k, v in record.items() if k != "last_modified"}, known)
        if "taskToken" in record:
            data["taskToken"] = TOKEN_MASK
        body = {"data": data}
        acl = _listed(request.registry.permission.get_object_permissions(uri))
        if holds(acl, known):
            body["permissions"] = scrub(acl, known)
        records.write_record(request, bucket_id, collection_id, record_id, body, create=True)


def _scrub_history(registry, bucket_id, collection_id, tokens, page):
    """Mask the tokens of the collection's history entries in place; how many were."""
    bucket = f"/buckets/{bucket_id}"
    scrubbed = 0
    batch = []

    def flush():
        def work(request):
            for entry in batch:
                request.registry.storage.update(
                    resource_name="history", parent_id=bucket, object_id=entry["id"], obj=entry
                )

        if batch:
            transactions.commit(registry, work)
        batch.clear()

    for entry in _history(registry, bucket_id, collection_id, page):
        data = (entry.get("target") or {}).get("data") or {}
        known = set(tokens.get(entry.get("uri"), ()))
        if valid_token(data.get("taskToken")):
            known.add(data["taskToken"])
        if known and holds(entry, known):
            batch.append(scrub(entry, known))  # its id and last_modified hold no token
            scrubbed += 1
            if len(batch) >= page:
                flush()
    flush()
    return scrubbed


def _history(registry, bucket_id, collection_id, page):
    filters = [
        Filter("resource_name", "record", COMPARISON.EQ),
        Filter("collection_id", collection_id, COMPARISON.EQ),
    ]
    for found in _pages(registry, "history", f"/buckets/{bucket_id}", filters, page):
        yield from found


def _pages(registry, resource_name, parent_id, filters=(), page=PAGE):
    """Every object under ``parent_id``, newest first, in lists of ``page``."""
    before = None
    while True:
        where = list(filters)
        if before is not None:
            where.append(Filter("last_modified", before, COMPARISON.LT))
        found = registry.storage.list_all(
            resource_name=resource_name,
            parent_id=parent_id,
            filters=where,
            sorting=[Sort("last_modified", -1)],
            limit=page,
        )
        if found:
            yield found
        if len(found) < page:
            return
        before = found[-1]["last_modified"]
