"""Who may change what in a step's record, and task tokens kept out of records.

In the collections that hold steps, the designation fields (which task a record answers),
the asking fields (what is asked of whom, until when) and the record's permissions are the
step's author's (write on the collection or its bucket) or the worker's, and ``status`` and
``answer`` the plugin's alone. Two subscribers hold that, on every write path (PUT, PATCH,
JSON merge and JSON-Patch, POST, DELETE, each request of a batch):

- ``check_write`` (NewRequest), before Kinto writes: the body is read as Kinto reads it, or
  the write is refused (``bodies``); a ``taskToken`` in it is replaced by ``TOKEN_MASK`` and
  kept aside, and the step's token masked wherever else the body carries it (``scrub``), so
  no response, history entry or log ever holds it; a write that would store a change its user
  may not make (``proposal``: the record and ACL Kinto would store) is refused. Kinto's
  memory backend can't roll back a write, so the check must come first.
- ``guard_steps`` (ResourceChanged, inside the write's transaction, as Kinto's signing
  plugins guard their status fields): the same check on what was really written, the ACL
  read back from the permission backend (events don't carry it), whatever wrote it; then the
  tokens kept aside are stored. Raising aborts the whole write.
"""

import json
import re
import uuid

from kinto.core.errors import ERRORS, http_error
from kinto.core.events import ACTIONS
from pyramid import httpexceptions
from pyramid.settings import asbool

from stepfunction import asking, records
from stepfunction.bodies import JSON_PATCH, MERGE_PATCH, read_body
from stepfunction.proposal import normalized, proposed
from stepfunction.schema import (
    ASKING_FIELDS,
    DECISION_FIELDS,
    DESIGNATION_FIELDS,
    MAX_TOKEN_CHARS,
    PLUGIN_FIELDS,
    TOKEN_MASK,
    UNANSWERED,
    valid_token,
)
from stepfunction.scrub import holds, scrub


__all__ = ["JSON_PATCH", "MERGE_PATCH", "check_write", "guard_steps", "tokens_in"]

TOKENS = "stepfunction.tokens"  # request.bound_data key: {record uri: token}
ACLS = "stepfunction.acls"  # request.bound_data key: {record uri: its ACL before the request}
RECORD_WRITE = re.compile(
    r"^/[^/]+/buckets/(?P<bucket_id>[^/]+)/collections/(?P<collection_id>[^/]+)"
    r"/records(?:/(?P<id>[^/]+))?/?$"
)
WHY = {
    **dict.fromkeys(DESIGNATION_FIELDS, "says which task this step answers"),
    "subject": "is what the step's reviewers are asked (mails and link pages show it)",
    "input": "is what the step's reviewers are asked about (mails and link pages show it)",
    "reviewer": "says who is asked to answer this step (mailed links answer as them)",
    "deadline": "says until when the step's reviewers are asked",
    "requester": "says who asks the step's reviewers (mails show it)",
    "permissions": "say who may read and answer this step",
    **dict.fromkeys(DECISION_FIELDS, "says how the step is decided, and by whom"),
}


def tokens_in(body, content_type):
    """The places of ``body`` that set a task token, as (container, key) pairs."""
    if content_type == JSON_PATCH and isinstance(body, list):
        return [
            (op, "value")
            for op in body
            if isinstance(op, dict)
            and op.get("path") == "/data/taskToken"
            and op.get("op") in ("add", "replace")
        ]
    data = body.get("data") if isinstance(body, dict) else None
    return [(data, "taskToken")] if isinstance(data, dict) and "taskToken" in data else []


def refusal(request, bucket_id, collection_id, action, old, new, new_token, by_plugin):
    """Why this change of a step's record is refused, as an HTTP error, or None."""
    if action == ACTIONS.DELETE.value:
        pending = old.get("status", UNANSWERED) == UNANSWERED and old.get("taskToken")
        if pending and not by_plugin and not records.is_author(request, bucket_id, collection_id):
            return _error(
                httpexceptions.HTTPForbidden,
                ERRORS.FORBIDDEN,
                "taskToken",
                "Only the step's author can delete a step that still waits for its answer.",
            )
        return None
    if new.get("taskToken") not in (None, TOKEN_MASK):
        return _error(
            httpexceptions.HTTPBadRequest,
            ERRORS.INVALID_PARAMETERS,
            "taskToken",
            f"taskToken must be a task token (a string of 1 to {MAX_TOKEN_CHARS} characters), "
            "given as data.taskToken.",
        )
    if by_plugin:
        return None
    fields = DESIGNATION_FIELDS + ASKING_FIELDS + PLUGIN_FIELDS
    changed = [f for f in fields if new.get(f) != old.get(f)]
    if new_token and "taskToken" not in changed:
        changed.insert(0, "taskToken")  # a new token behind the same mask
    if action == ACTIONS.CREATE.value and new.get("status") == UNANSWERED:
        changed.remove("status")
    for field in changed:
        if field in PLUGIN_FIELDS:
            return _error(
                httpexceptions.HTTPForbidden,
                ERRORS.FORBIDDEN,
                field,
                f"{field} is written by the stepfunction plugin only: answer the step with "
                "POST …/stepfunction.",
            )
    if changed and not records.is_author(request, bucket_id, collection_id):
        return authors_only(changed[0])
    return None


def authors_only(field):
    """The 403 of a change of ``field`` (or ``permissions``) by someone not the step's author."""
    verb = "them" if field == "permissions" else "it"
    return _error(
        httpexceptions.HTTPForbidden,
        ERRORS.FORBIDDEN,
        field,
        f"{field} {WHY[field]}: only the step's author (write on its collection) can "
        f"change {verb}.",
    )


def _error(status, errno, field, message):
    details = {"name": field, "location": "body"}
    return http_error(status(), errno=errno, message=message, details=details)


def _owner(request):
    """The principal Kinto makes an owner of the records it writes for ``request``, or None."""
    if not asbool(request.registry.settings.get("explicit_permissions", True)):
        return None
    # Authenticating sets what ``prefixed_userid`` reads (not yet done in NewRequest).
    if request.authenticated_userid is None:
        return "system.Everyone"  # Kinto's principal of an anonymous writer
    return request.prefixed_userid


def _with_owner(acl, owner):
    acl = {perm: set(principals) for perm, principals in acl.items()}
    if owner:
        acl.setdefault("write", set()).add(owner)
    return acl


def check_write(event):
    """Before Kinto writes a step's record: keep its token aside, refuse what isn't allowed."""
    request = event.request
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return
    match = RECORD_WRITE.match(request.path_info)
    settings = getattr(request.registry, "stepfunction_settings", None)
    if match is None or settings is None:
        return
    bucket_id, collection_id = match["bucket_id"], match["collection_id"]
    if not settings.holds_steps(bucket_id, collection_id):
        return
    if request.method == "DELETE" and match["id"] is None:
        return  # deleting the whole list: Kinto's own permissions apply (authors only)
    kind, body = None, None
    if request.method != "DELETE":  # Kinto reads no body on DELETE
        kind, body = read_body(request)  # or refused: 415, 400
    record_id = match["id"]
    if record_id is None:  # a POST: give the new record its id now, to keep its token by.
        data = body.setdefault("data", {})
        if not isinstance(data, dict):
            raise _error(
                httpexceptions.HTTPBadRequest,
                ERRORS.INVALID_PARAMETERS,
                "data",
                "data must be an object.",
            )
        data.setdefault("id", str(uuid.uuid4()))
        record_id = data["id"]
    if not isinstance(record_id, str) or not records.RECORD_ID.fullmatch(record_id):
        return  # Kinto answers 400.

    places = [(c, k) for c, k in tokens_in(body, kind) if valid_token(c[k])]
    uri = records.record_uri(bucket_id, collection_id, record_id)
    # The step's tokens: given now, kept aside earlier in this batch, or stored.
    known = [container[key] for container, key in places]
    known.append(request.bound_data.get(TOKENS, {}).get(uri))
    for container, key in places:
        request.bound_data.setdefault(TOKENS, {})[uri] = container[key]
        container[key] = TOKEN_MASK
    if body is not None and match["id"] is not None:
        known.append((records.get_task(request, uri) or {}).get("token"))
    scrubbed = scrub(body, known)
    if places or scrubbed != body or match["id"] is None:
        body = scrubbed  # the step's token, wherever else the body carries it: masked too
        request.body = json.dumps(body).encode("utf-8")

    old = records.read_record(request, bucket_id, collection_id, record_id) or {}
    old_acl = normalized(request.registry.permission.get_object_permissions(uri))
    request.bound_data.setdefault(ACLS, {}).setdefault(uri, old_acl)
    action = {"DELETE": ACTIONS.DELETE, "POST": ACTIONS.CREATE}.get(request.method)
    action = (action or (ACTIONS.UPDATE if old else ACTIONS.CREATE)).value
    new, acl = None, None
    if request.method != "DELETE":
        owner = _owner(request)
        new, acl = proposed(request.method, kind, body, old, old_acl, owner)
        if new is None:
            raise _error(
                httpexceptions.HTTPBadRequest,
                ERRORS.INVALID_PARAMETERS,
                "data",
                "The patch can't be applied to this record.",
            )
        acl_changed = acl != _with_owner(old_acl, owner)
    problem = refusal(
        request, bucket_id, collection_id, action, old, new or {}, bool(places), by_plugin=False
    )
    if problem is None and acl is not None and acl_changed:
        if not records.is_author(request, bucket_id, collection_id):
            problem = authors_only("permissions")
    if problem is None and new is not None:
        problem = asking.refusal(new, old, settings.mail_enabled)
    if problem is not None:
        request.bound_data.get(TOKENS, {}).pop(uri, None)
        raise problem


def guard_steps(event):
    """Inside the write's transaction: the same check on what was written; keep its tokens."""
    payload = event.payload
    if payload.get("resource_name") != "record":
        return
    bucket_id, collection_id = payload["bucket_id"], payload["collection_id"]
    request = event.request
    settings = request.registry.stepfunction_settings
    if not settings.holds_steps(bucket_id, collection_id):
        return
    tokens = request.bound_data.get(TOKENS, {})
    acls = request.bound_data.get(ACLS, {})
    action = payload["action"]
    for change in event.impacted_objects:
        new, old = change.get("new") or {}, change.get("old") or {}
        uri = records.record_uri(bucket_id, collection_id, new.get("id") or old.get("id"))
        by_plugin = records.written_by_plugin(request, new)
        if uri in tokens and holds(new, [tokens[uri]]):  # a write ``check_write`` misread
            raise _error(
                httpexceptions.HTTPBadRequest,
                ERRORS.INVALID_PARAMETERS,
                "taskToken",
                "The record would show its task token: give it as data.taskToken only.",
            )
        problem = refusal(
            request, bucket_id, collection_id, action, old, new, uri in tokens, by_plugin
        )
        if problem is None and not by_plugin and action != ACTIONS.DELETE.value:
            problem = _acl_refusal(request, bucket_id, collection_id, uri, acls)
        if problem is None and action != ACTIONS.DELETE.value:
            problem = asking.refusal(new, old, settings.mail_enabled)
        if problem is not None:
            raise problem
        if action == ACTIONS.DELETE.value:
            records.drop_task(request, uri)
        elif uri in tokens:
            try:
                region = request.registry.stepfunction_client.region_for(new)
            except ValueError:
                region = None  # an answer says why.
            records.put_task(request, uri, tokens.pop(uri), region=region)
        elif "taskToken" not in new and "taskToken" in old:
            records.drop_task(request, uri)


def _acl_refusal(request, bucket_id, collection_id, uri, acls):
    """The 403 of an ACL this request changed though its user isn't the step's author."""
    before = acls.get(uri)
    if before is None:
        return None  # not a write ``check_write`` saw
    after = normalized(request.registry.permission.get_object_permissions(uri))
    if after == _with_owner(before, _owner(request)):
        return None
    if records.is_author(request, bucket_id, collection_id):
        return None
    return authors_only("permissions")
