"""What a write to a record would store, its data and its ACL, computed as Kinto computes them.

Mirrors ``kinto.core.resource.Resource`` (``put``, ``patch``, ``apply_changes``,
``process_object``) and its model (``replace_object_permissions``, then the writer made an
owner), with Kinto's own helpers for merge and JSON-Patch, so that the guard checks, before
the write, the record and the ACL that Kinto is about to store.
"""

import copy

from kinto.core.utils import apply_json_patch, recursive_update_dict

from stepfunction.bodies import JSON_PATCH, MERGE_PATCH


RECORD_PERMISSIONS = ("read", "write")


def proposed(method, kind, body, old, old_acl, writer=None):
    """``(data, acl)`` after the write: ``data`` is None when Kinto would refuse the patch.

    ``old`` is the stored record (``{}`` if none), ``old_acl`` its ACL as the permission
    backend returns it, ``writer`` the principal Kinto makes an owner (None: none).
    """
    old = copy.deepcopy(old or {})
    acl = {perm: set(principals) for perm, principals in (old_acl or {}).items()}
    if kind == JSON_PATCH:
        try:
            patched = apply_json_patch({**old, "__permissions__": acl}, copy.deepcopy(body))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None, normalized(acl)  # Kinto answers 400
        data = patched["data"]
        requested = {perm: set(principals) for perm, principals in patched["permissions"].items()}
    else:
        data = _data(method, kind, body.get("data"), old)
        requested = _permissions(kind, body.get("permissions"), acl)
        if requested and (method == "PUT" or kind == MERGE_PATCH):
            for perm in RECORD_PERMISSIONS:  # every ACE not given is emptied
                requested.setdefault(perm, set())
    acl.update(requested)
    if writer:
        acl.setdefault("write", set()).add(writer)
    return data, normalized(acl)


def _data(method, kind, data, old):
    if method in ("PUT", "POST"):
        # PUT without ``data`` keeps the stored record; POST without it creates an empty one.
        return copy.deepcopy(data if data is not None else old if method == "PUT" else {}) or {}
    if data is None:
        return old  # a PATCH of the permissions alone
    if not isinstance(data, dict):
        return None
    if kind == MERGE_PATCH:
        recursive_update_dict(old, copy.deepcopy(data), ignores=(None,))
        return old
    return {**old, **data}


def _permissions(kind, permissions, acl):
    if not isinstance(permissions, dict):
        return {}
    if kind == MERGE_PATCH:
        merged = {perm: list(principals) for perm, principals in acl.items()}
        recursive_update_dict(merged, copy.deepcopy(permissions), ignores=(None,))
        return {perm: _principals(principals) for perm, principals in merged.items()}
    return {
        perm: _principals(principals)
        for perm, principals in permissions.items()
        if principals is not None
    }


def _principals(value):
    if isinstance(value, (list, tuple, set)):
        return {p if isinstance(p, str) else repr(p) for p in value}
    return {repr(value)}  # not principals: Kinto answers 400, the guard sees a change


def normalized(acl):
    """An ACL as comparable sets, its empty ACEs left off."""
    return {perm: set(principals) for perm, principals in (acl or {}).items() if principals}
