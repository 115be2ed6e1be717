"""Kinto's own writes of the executions collection: a created record starts its execution.

Two subscribers:

- ``start_on_create`` (pyramid's ContextFound: the route's context, Kinto's RouteFactory, is
  known, the view not yet called): Kinto's own permission check first
  (``request.has_permission``, the question the view will ask), so nothing starts for a
  principal Kinto would refuse; then the body is checked (with the collection's JSON schema
  when Kinto validates it), the execution started, and the body Kinto reads rewritten with
  the plugin's fields: the 201 holds them. Changes of the record's ``stateMachineArn``,
  ``input`` or plugin fields are refused here, before Kinto writes (its memory backend can't
  roll back).
- ``guard_executions`` (ResourceChanged, inside the write's transaction): the same rules on
  what was written, whatever wrote it (batch, JSON-Patch, merge); only the plugin's writes
  (``records.write_record``) change the plugin's fields.
"""

import datetime
import json
import uuid

from kinto.core.authorization import DYNAMIC
from kinto.core.events import ACTIONS

from stepfunction import records
from stepfunction.bodies import JSON, read_body
from stepfunction.ended_mail import FIELD as NOTIFY
from stepfunction.ended_mail import changed_notify_problem
from stepfunction.executions import (
    PROTECTED,
    bad_request,
    changed_field,
    execution_arn,
    iso,
    refused,
    start,
    start_problems,
)
from stepfunction.proposal import proposed
from stepfunction.schema import RUNNING


STARTED = "stepfunction.started"  # request.bound_data key: {record uri: fields it started with}
ROUTES = ("record-plural", "record-object")


def start_on_create(event):
    """ContextFound: a record created in the executions collection starts its execution."""
    request = event.request
    route = getattr(request, "matched_route", None)  # unset when no route matched
    settings = getattr(request.registry, "stepfunction_settings", None)
    if route is None or route.name not in ROUTES or settings is None:
        return
    if request.method not in ("POST", "PUT", "PATCH"):
        return  # reads, and deletes (which stop nothing): Kinto's own rules
    ids = (request.matchdict.get("bucket_id"), request.matchdict.get("collection_id"))
    if not settings.holds_executions(*ids):
        return
    if not request.has_permission(DYNAMIC, request.context):
        return  # Kinto answers 401 or 403: nothing is started
    old = request.context.current_object
    if request.method == "POST" and old is not None:
        return  # a POST of an existing id: Kinto answers with the record, unchanged
    kind, body = read_body(request)  # or refused: 415, 400
    if old is None:
        # A PATCH of a missing record: Kinto's 404; If-Match on one: Kinto's 412.
        if request.method != "PATCH" and "If-Match" not in request.headers:
            _start_new(request, settings, ids, body)
        return
    _check_update(request, kind, body, old)


def _start_new(request, settings, ids, body):
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise refused("data", "data must be an object.")
    record_id = request.matchdict.get("id") or data.setdefault("id", str(uuid.uuid4()))
    if not isinstance(record_id, str) or not records.RECORD_ID.fullmatch(record_id):
        raise refused("id", "Invalid record id.")
    if data.get("id", record_id) != record_id:
        raise refused("id", "The record id in the body is not the one in the path.")
    uri = records.record_uri(*ids, record_id)
    if uri in request.bound_data.get(STARTED, {}):
        return  # the request again, after Kinto's race (``execution_races``): the body holds it
    problems = start_problems(data, settings)
    if problems:
        raise bad_request(problems)
    data.setdefault("input", {})
    started_by = request.prefixed_userid or "system.Everyone"
    arn = data["stateMachineArn"]
    # Kinto's own validation of the record (collection and bucket schemas), before starting.
    sketch = {"executionArn": execution_arn(arn, record_id), "status": RUNNING}
    sketch.update(startDate=iso(datetime.datetime.now(datetime.UTC)), startedBy=started_by)
    records.validate_new_record(request, {**data, **sketch})
    fields = start(request, record_id, arn, data["input"], started_by)
    data.update(fields)
    body["data"] = data
    request.bound_data.setdefault(STARTED, {})[uri] = {**fields, **data}
    request.body = json.dumps(body).encode("utf-8")


def _check_update(request, kind, body, old):
    """A write of an existing execution's record: its protected fields stay as they are.

    A PUT (which replaces the record) keeps those it leaves out, so that a retried PUT of
    the same ``stateMachineArn`` and ``input`` is the no-op it means."""
    if request.method == "PUT" and kind == JSON and isinstance(body.get("data"), dict):
        for field in PROTECTED:
            if field in old and field not in body["data"]:
                body["data"][field] = old[field]
        request.body = json.dumps(body).encode("utf-8")
    new, _ = proposed(request.method, kind, body, old, {}, None)
    if new is None:
        raise refused("data", "The patch can't be applied to this record.")
    field = changed_field(old, new)
    if field is not None:
        raise refused(field)
    _check_notify(new, old)


def _check_notify(new, old):
    """400 naming ``notify`` when it changed to what can't be mailed."""
    problem = changed_notify_problem(new, old)
    if problem:
        raise refused(NOTIFY, problem[0].upper() + problem[1:] + ".")


def guard_executions(event):
    """ResourceChanged: what was written in the executions collection keeps the rules."""
    payload = event.payload
    request = event.request
    settings = getattr(request.registry, "stepfunction_settings", None)
    if payload.get("resource_name") != "record" or settings is None:
        return
    ids = (payload["bucket_id"], payload["collection_id"])
    if not settings.holds_executions(*ids) or payload["action"] == ACTIONS.DELETE.value:
        return
    started = request.bound_data.get(STARTED, {})
    for change in event.impacted_objects:
        new, old = change.get("new") or {}, change.get("old") or {}
        if records.written_by_plugin(request, new):
            continue
        before = old
        if payload["action"] == ACTIONS.CREATE.value:
            old, before = started.get(records.record_uri(*ids, new.get("id"))), {}
            if old is None:
                raise refused("executionArn")  # a record no start of this request prepared
        field = changed_field(old, new)
        if field is not None:
            raise refused(field)
        _check_notify(new, before)
