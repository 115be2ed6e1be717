"""Which record a webhook's signed body started: private objects, one per body digest.

A scheme that signs the body but not the delivery id (GitHub's, WebSub's) could otherwise
start a second execution from a captured delivery sent again under another id."""

from stepfunction.records.private import get_private


DELIVERY = "stepfunction-webhook-body"


def _parent(webhook_name):
    return f"/stepfunction/webhooks/{webhook_name}/bodies"


def first_delivery(request, webhook_name, digest):
    """The id of the record this body started first, or None."""
    found = get_private(request, DELIVERY, _parent(webhook_name), digest)
    return found["record"] if found else None


def put_delivery(request, webhook_name, digest, record_id):
    request.registry.storage.update(
        resource_name=DELIVERY,
        parent_id=_parent(webhook_name),
        object_id=digest,
        obj={"record": record_id},
    )
