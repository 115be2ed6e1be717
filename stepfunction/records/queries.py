"""Records listed by status: the storage backend filters, sorts and pages them."""

from kinto.core.storage import Filter, Sort
from kinto.core.utils import COMPARISON

from stepfunction.records.uris import collection_uri
from stepfunction.schema import ANSWERS, TIMED_OUT
from stepfunction.schema import CLOSED as CLOSED_WITH_EXECUTION


# A record with another status, or none, is pending.
CLOSED = (*ANSWERS, TIMED_OUT, CLOSED_WITH_EXECUTION)


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


def execution_steps(request, bucket_id, collection_id, execution_arn=None, limit=None, after=None):
    """Pending steps of the collection that name an execution (that one, if given), oldest
    first, modified after ``after`` (a ``last_modified``, to page through them)."""
    filters = [
        Filter("status", list(CLOSED), COMPARISON.EXCLUDE),
        Filter("executionArn", execution_arn, COMPARISON.EQ)
        if execution_arn
        else Filter("executionArn", True, COMPARISON.HAS),
    ]
    return _oldest_first(request, bucket_id, collection_id, filters, limit, after)


def _oldest_first(request, bucket_id, collection_id, filters, limit, after):
    """Records of the collection matching ``filters``, oldest first, modified after ``after``."""
    if after is not None:
        filters = [*filters, Filter("last_modified", after, COMPARISON.GT)]
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
    return _oldest_first(request, bucket_id, collection_id, filters, limit, after)


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
