"""Who may change what in a step's record, and task tokens kept out of records.

Two subscribers, for the collections that hold steps:

- ``take_tokens`` (NewRequest, sub-requests of a batch included): a ``taskToken`` in the body
  of a record write is replaced by ``TOKEN_MASK`` before Kinto sees it, and kept aside for
  ``guard_steps``. So no response, history entry or log holds the token.
- ``guard_steps`` (ResourceChanged, inside the write's transaction, as Kinto's signing plugins
  guard their status fields): refuses a change of the designation fields by anyone but the
  step's author (write on the collection or the bucket) or the worker, and of ``status`` and
  ``answer`` by anyone but the plugin; then stores the tokens kept aside. Raising aborts the
  whole write (a batch included) with Kinto's error format.
"""

import json
import re
import uuid

from kinto.core.errors import ERRORS, http_error
from kinto.core.events import ACTIONS
from pyramid import httpexceptions

from stepfunction import records
from stepfunction.schema import (
    DESIGNATION_FIELDS,
    MAX_TOKEN_CHARS,
    PLUGIN_FIELDS,
    TOKEN_MASK,
    UNANSWERED,
    valid_token,
)


TOKENS = "stepfunction.tokens"  # request.bound_data key: {record uri: token}
RECORD_WRITE = re.compile(
    r"^/[^/]+/buckets/(?P<bucket_id>[^/]+)/collections/(?P<collection_id>[^/]+)"
    r"/records(?:/(?P<id>[^/]+))?/?$"
)
JSON_PATCH = "application/json-patch+json"


def _tokens_in(body, content_type):
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


def take_tokens(event):
    """Replace the task token of a record write by the mask; keep it for ``guard_steps``."""
    request = event.request
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    match = RECORD_WRITE.match(request.path_info)
    settings = getattr(request.registry, "stepfunction_settings", None)
    if match is None or settings is None:
        return
    if not settings.holds_steps(match["bucket_id"], match["collection_id"]):
        return
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return  # Kinto answers 400.
    places = [(c, k) for c, k in _tokens_in(body, request.content_type) if valid_token(c[k])]
    if not places:
        return
    record_id = match["id"]
    if record_id is None:  # a POST: give the new record its id now, to keep its token by.
        if "id" not in body["data"]:
            body["data"]["id"] = str(uuid.uuid4())
        record_id = body["data"]["id"]
    if not isinstance(record_id, str):
        return  # Kinto answers 400.
    uri = records.record_uri(match["bucket_id"], match["collection_id"], record_id)
    for container, key in places:
        request.bound_data.setdefault(TOKENS, {})[uri] = container[key]
        container[key] = TOKEN_MASK
    request.body = json.dumps(body).encode("utf-8")


def refuse(status, errno, field, message):
    details = {"name": field, "location": "body"}
    raise http_error(status(), errno=errno, message=message, details=details)


def guard_steps(event):
    payload = event.payload
    if payload.get("resource_name") != "record":
        return
    bucket_id, collection_id = payload["bucket_id"], payload["collection_id"]
    request = event.request
    if not request.registry.stepfunction_settings.holds_steps(bucket_id, collection_id):
        return
    tokens = request.bound_data.get(TOKENS, {})
    action = payload["action"]

    for change in event.impacted_objects:
        new, old = change.get("new") or {}, change.get("old") or {}
        uri = records.record_uri(bucket_id, collection_id, new.get("id") or old.get("id"))
        if action == ACTIONS.DELETE.value:
            pending = old.get("status", UNANSWERED) == UNANSWERED and old.get("taskToken")
            if pending and not records.written_by_plugin(request, new):
                if not records.is_author(request, bucket_id, collection_id):
                    refuse(
                        httpexceptions.HTTPForbidden,
                        ERRORS.FORBIDDEN,
                        "taskToken",
                        "Only the step's author can delete a step that still waits for "
                        "its answer.",
                    )
            records.drop_task(request, uri)
            continue

        changed = [f for f in DESIGNATION_FIELDS + PLUGIN_FIELDS if new.get(f) != old.get(f)]
        if uri in tokens and "taskToken" not in changed:
            changed.insert(0, "taskToken")  # a new token behind the same mask
        if action == ACTIONS.CREATE.value and new.get("status") == UNANSWERED:
            changed.remove("status")

        if not records.written_by_plugin(request, new):
            for field in changed:
                if field in PLUGIN_FIELDS:
                    refuse(
                        httpexceptions.HTTPForbidden,
                        ERRORS.FORBIDDEN,
                        field,
                        f"{field} is written by the stepfunction plugin only: answer the step "
                        "with POST …/stepfunction.",
                    )
                if not records.is_author(request, bucket_id, collection_id):
                    refuse(
                        httpexceptions.HTTPForbidden,
                        ERRORS.FORBIDDEN,
                        field,
                        f"{field} says which task this step answers: only the step's author "
                        "(write on its collection) can change it.",
                    )

        if new.get("taskToken") not in (None, TOKEN_MASK):
            refuse(
                httpexceptions.HTTPBadRequest,
                ERRORS.INVALID_PARAMETERS,
                "taskToken",
                f"taskToken must be a task token (a string of 1 to {MAX_TOKEN_CHARS} "
                "characters), given as data.taskToken.",
            )
        if uri in tokens:
            try:
                region = request.registry.stepfunction_client.region_for(new)
            except ValueError:
                region = None  # an answer says why.
            records.put_task(request, uri, tokens.pop(uri), region=region)
        elif "taskToken" not in new and "taskToken" in old:
            records.drop_task(request, uri)
