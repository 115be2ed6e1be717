"""The plugin's private storage objects: kept in Kinto's storage, served by no endpoint."""

import hashlib

from kinto.core.storage.exceptions import ObjectNotFoundError


def get_private(request, kind, uri, object_id):
    """A private object of the record (``kind`` is its resource name), or None."""
    try:
        return request.registry.storage.get(resource_name=kind, parent_id=uri, object_id=object_id)
    except ObjectNotFoundError:
        return None


def drop_private(request, kind, uri, object_id):
    """Delete a private object of the record, if there is one."""
    try:
        request.registry.storage.delete(
            resource_name=kind, parent_id=uri, object_id=object_id, with_deleted=False
        )
    except ObjectNotFoundError:
        pass


def index_id(uri):
    """The id of a step's entry in an index of many steps (the outbox's, the escalations')."""
    return hashlib.blake2b(uri.encode("utf-8"), digest_size=16).hexdigest()
