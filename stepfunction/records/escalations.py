"""When a pending step escalates (a step unanswered too long gets more reviewers)."""

from kinto.core.storage import Filter, Sort
from kinto.core.utils import COMPARISON

from stepfunction.records.private import drop_private, get_private, index_id


ESCALATION = "stepfunction-escalation"
ESCALATIONS_PARENT = "/stepfunction/escalations"


def get_escalation(request, uri):
    """``{"uri", "since", "due"}``: when the pending step ``uri`` escalates, or None."""
    return get_private(request, ESCALATION, ESCALATIONS_PARENT, index_id(uri))


def put_escalation(request, uri, since, due):
    entry = {"id": index_id(uri), "uri": uri, "since": since, "due": due}
    request.registry.storage.update(
        resource_name=ESCALATION, parent_id=ESCALATIONS_PARENT, object_id=entry["id"], obj=entry
    )


def drop_escalation(request, uri):
    drop_private(request, ESCALATION, ESCALATIONS_PARENT, index_id(uri))


def due_escalations(request, now, limit):
    """The escalations due at ``now``, soonest first (one indexed query on PostgreSQL)."""
    return request.registry.storage.list_all(
        resource_name=ESCALATION,
        parent_id=ESCALATIONS_PARENT,
        filters=[Filter("due", now, COMPARISON.MAX)],
        sorting=[Sort("due", 1)],
        limit=limit,
    )


def scheduled_uris(request):
    """The steps that have an escalation scheduled."""
    found = request.registry.storage.list_all(
        resource_name=ESCALATION, parent_id=ESCALATIONS_PARENT
    )
    return {entry["uri"] for entry in found}
