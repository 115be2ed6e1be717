"""Task tokens, kept apart from records as private storage objects that no Kinto endpoint
serves (``resource_name = "stepfunction-task"``, one per record); a record shows
``TOKEN_MASK`` where its token is."""

import time

from kinto.core.storage.exceptions import UnicityError

from stepfunction.records.private import drop_private, get_private
from stepfunction.records.uris import collection_uri


TASK = "stepfunction-task"
TASK_ID = "task"


def get_task(request, uri):
    """``{"token", "region", "sent"}`` of the record's pending task, or None."""
    task = get_private(request, TASK, uri, TASK_ID)
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
    drop_private(request, TASK, uri, TASK_ID)


def pending_tasks(request, bucket_id, collection_id):
    """``[(record_id, task)]`` of every record of the collection that holds a task token."""
    parent = collection_uri(bucket_id, collection_id) + "/records/*"
    tasks = request.registry.storage.list_all(resource_name=TASK, parent_id=parent)
    return [(t["record_id"], t) for t in tasks if "token" in t and not t.get("closed")]
