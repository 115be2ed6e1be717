"""Refuse, with a 400 naming the field, a step whose ``reviewer`` or ``deadline`` can't be used.

``check_asking`` (NewRequest, after the guard's ``check_write``) refuses the write before
Kinto stores it, on every write path; ``guard_asking`` (ResourceChanged) checks what was really
written, inside the write's transaction. Only a changed field is checked: a record stored by an
earlier version can still be answered. ``reviewer`` is checked with mail on only: without it,
it is free text that nothing mails (the original plugin's seed holds a placeholder). The
worker drops what it can't use from a task's input (``stepfunction.worker.tasks``) rather
than refusing the task.
"""

import json

from kinto.core.errors import ERRORS, http_error
from pyramid import httpexceptions

from stepfunction import records
from stepfunction.addresses import asking_problem
from stepfunction.guard import RECORD_WRITE, proposed


def _changed(new, old):
    return {f: new.get(f) for f in ("reviewer", "deadline") if new.get(f) != old.get(f)}


def refusal(new, old, mail):
    changed = _changed(new or {}, old or {})
    if not mail:  # ``reviewer`` is free text when nothing is mailed (the original seed's)
        changed.pop("reviewer", None)
    problem = asking_problem(changed)
    if problem is None:
        return None
    field, message = problem
    details = {"name": field, "location": "body", "description": message}
    return http_error(
        httpexceptions.HTTPBadRequest(),
        errno=ERRORS.INVALID_PARAMETERS,
        message=f"data.{field} in body: {message}",
        details=[details],
    )


def check_asking(event):
    request = event.request
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    match = RECORD_WRITE.match(request.path_info)
    settings = getattr(request.registry, "stepfunction_settings", None)
    if match is None or settings is None:
        return
    bucket_id, collection_id = match["bucket_id"], match["collection_id"]
    if not settings.holds_steps(bucket_id, collection_id):
        return
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return  # Kinto answers 400 (or the guard refused it).
    old = {}
    if match["id"] is not None and records.RECORD_ID.fullmatch(match["id"]):
        old = records.read_record(request, bucket_id, collection_id, match["id"]) or {}
    new = proposed(request.method, request.content_type, body, old)
    problem = refusal(new, old, settings.mail_enabled) if new is not None else None
    if problem is not None:
        raise problem


def guard_asking(event):
    payload = event.payload
    request = event.request
    settings = request.registry.stepfunction_settings
    if not settings.holds_steps(payload["bucket_id"], payload["collection_id"]):
        return
    for change in event.impacted_objects:
        problem = refusal(change.get("new"), change.get("old"), settings.mail_enabled)
        if problem is not None:
            raise problem
