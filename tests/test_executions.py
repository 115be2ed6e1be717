"""Executions as records: started by creating a record, stopped by POST …/stepfunction/stop,
against Kinto (memory and PostgreSQL) and the local Step Functions."""

import collections
import json
import urllib.error
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kinto.core.testing import get_user_headers
from pyramid.httpexceptions import HTTPBadRequest

from stepfunction import executions, transactions
from stepfunction.settings import Settings
from tests.conftest import (
    ADMIN,
    REGION,
    STRANGER,
    app_settings,
    lose_race_once,
    user_id,
    wait_for,
)
from tests.test_concurrency import all_at_once, kinto_processes


EXECUTIONS = "/buckets/stepfunction/collections/executions"
AUTHOR = get_user_headers("author")  # record:create on the collection
WRITER = get_user_headers("writer")  # write on one record, given by its author
READER = get_user_headers("reader")  # read on the collection
ANONYMOUS = {}
STOP_PATH = "/buckets/{bucket_id}/collections/{collection_id}/records/{id}/stepfunction/stop"
MACHINE_TIMEOUT = 8  # seconds the test executions wait on their step (none waits longer)


def url(record_id=None):
    return f"{EXECUTIONS}/records" + (f"/{record_id}" if record_id else "")


def stop_url(record_id):
    return f"{url(record_id)}/stepfunction/stop"


@pytest.fixture
def machine(workflows):
    """A state machine whose executions wait on an activity (``MACHINE_TIMEOUT`` at most)."""
    return workflows.activity_machine(workflows.activity(), timeout=MACHINE_TIMEOUT)


@pytest.fixture
def other_machine(workflows):
    return workflows.activity_machine(workflows.activity(), timeout=MACHINE_TIMEOUT)


@pytest.fixture
def app(app_factory, machine):
    """Starting allowed for ``machine`` only."""
    return app_factory(**{"stepfunction.state_machines": machine})


@pytest.fixture
def collection(app):
    """The executions collection: the author may create, the reader read."""
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    permissions = {"record:create": [user_id(app, AUTHOR)], "read": [user_id(app, READER)]}
    app.put_json(EXECUTIONS, {"permissions": permissions}, headers=ADMIN)
    return EXECUTIONS


def executions_of(workflows, machine):
    return workflows.sfn.list_executions(stateMachineArn=machine)["executions"]


def acl_of(app, record_id):
    """The whole ACL, as the record's owner reads it (Kinto shows the bucket's owner none)."""
    acl = app.get(url(record_id), headers=AUTHOR).json["permissions"]
    return {perm: sorted(principals) for perm, principals in acl.items()}


def start(app, machine, record_id=None, headers=AUTHOR, expect=201, **data):
    body = {"data": {"stateMachineArn": machine, **data}}
    if record_id:
        return app.put_json(url(record_id), body, headers=headers, status=expect)
    return app.post_json(url(), body, headers=headers, status=expect)


# Starting.


def test_creating_a_record_starts_its_execution(app, collection, machine, workflows):
    for record_id, payload in ((None, {"addon": "tabs"}), ("by-put", None)):
        extra = {"input": payload} if payload is not None else {}  # input: {} by default
        data = start(app, machine, record_id, **extra).json["data"]

        assert data["status"] == "RUNNING"
        assert data["startDate"].endswith("+00:00")
        assert data["startedBy"] == user_id(app, AUTHOR)
        assert data["input"] == (payload or {})
        described = workflows.sfn.describe_execution(executionArn=data["executionArn"])
        assert described["name"] == data["id"]
        assert described["status"] == "RUNNING"
        assert described["stateMachineArn"] == machine
        assert json.loads(described["input"]) == (payload or {})
        assert app.get(url(data["id"]), headers=AUTHOR).json["data"] == data
        assert acl_of(app, data["id"]) == {"write": [user_id(app, AUTHOR)]}


def test_retries_start_one_execution(app, collection, machine, workflows):
    first = start(app, machine, "once", input={"n": 1}).json["data"]
    again = start(app, machine, "once", input={"n": 1}, expect=200).json["data"]
    assert {**again, "last_modified": None} == {**first, "last_modified": None}  # a PUT
    posted = start(app, machine, id="posted").json["data"]
    assert start(app, machine, id="posted", expect=200).json["data"] == posted
    assert len(executions_of(workflows, machine)) == 2


# Kinto's timestamp race is PostgreSQL's: the memory backend has none.
@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("loser", ["record", "history"])
def test_a_started_records_write_that_loses_kintos_race_is_written_at_once(
    app, collection, machine, workflows, monkeypatch, loser
):
    """The record's write (Kinto's view), or its history entry (a listener), loses Kinto's
    timestamp race once after the execution started: the same request writes it again.
    Before, the client got 409 "please retry", and a POST without an id, posted again,
    started a second execution while the first one had no record."""
    author = user_id(app, AUTHOR)
    for record_id, fields in ((None, {}), (None, {"id": "posted"}), ("put", {})):
        raced = lose_race_once(monkeypatch, app.app.registry.storage, loser)
        data = start(app, machine, record_id, input={"n": 1}, **fields).json["data"]
        monkeypatch.undo()
        assert raced
        assert data["status"] == "RUNNING" and data["startedBy"] == author
        assert app.get(url(data["id"]), headers=AUTHOR).json["data"] == data
        assert acl_of(app, data["id"]) == {"write": [author]}
        history = app.get("/buckets/stepfunction/history", headers=ADMIN).json["data"]
        entries = [h for h in history if h["uri"] == f"{EXECUTIONS}/records/{data['id']}"]
        assert [h["action"] for h in entries] == ["create"]
    started = executions_of(workflows, machine)
    stored = app.get(url(), headers=AUTHOR).json["data"]
    assert sorted(e["executionArn"] for e in started) == sorted(r["executionArn"] for r in stored)
    assert len(started) == 3


def post_once(base, machine, n):
    """One POST of a new execution record, without an id, not sent again: its status."""
    body = json.dumps({"data": {"stateMachineArn": machine, "input": {"n": n}}}).encode()
    headers = {"Content-Type": "application/json", **AUTHOR}
    request = urllib.request.Request(f"{base}{url()}", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_storm_of_starts_over_two_processes_gets_every_record_at_once(
    app, collection, machine, workflows, emulator, tmp_path
):
    """Records created at once, without ids, in one collection over two Kinto processes (as
    the CI run where one got 409 "please retry"): each gets its 201, with nothing sent again,
    and every execution started has its record."""
    settings = app_settings("postgresql", emulator, **{"stepfunction.state_machines": machine})
    with kinto_processes(settings, tmp_path, 2) as servers:
        statuses = collections.Counter()
        for _ in range(3):
            calls = [(post_once, (servers.urls[i % 2], machine, i)) for i in range(16)]
            statuses.update(all_at_once(calls))
    assert statuses == {201: 48}
    started = executions_of(workflows, machine)
    stored = app.get(url(), headers=AUTHOR).json["data"]
    assert sorted(e["executionArn"] for e in started) == sorted(r["executionArn"] for r in stored)
    assert len(stored) == 48


def test_a_name_taken_with_another_input_starts_nothing(app, collection, machine, workflows):
    start(app, machine, "once", input={"n": 1})
    response = start(app, machine, "once", input={"n": 2}, expect=403)
    assert response.json["details"][0]["name"] == "input"
    # An execution of that name, with no record: 409, no record.
    workflows.sfn.start_execution(stateMachineArn=machine, name="taken", input='{"n": 1}')
    response = start(app, machine, "taken", input={"n": 2}, expect=409)
    assert "another input" in response.json["message"]
    app.get(url("taken"), headers=ADMIN, status=404)
    assert len(executions_of(workflows, machine)) == 2


def test_nobody_else_starts_anything(app, collection, machine, workflows):
    for headers, status in ((READER, 403), (STRANGER, 403), (ANONYMOUS, 401), (WRITER, 403)):
        start(app, machine, headers=headers, expect=status)
        start(app, machine, "by-put", headers=headers, expect=status)
        app.post_json(
            url(),
            {"data": {"id": "by-id", "stateMachineArn": machine}},
            headers=headers,
            status=status,
        )
    assert executions_of(workflows, machine) == []
    assert "StartExecution" not in workflows.emulator.calls
    assert app.get(url(), headers=ADMIN).json["data"] == []


def test_collection_writers_and_everyone_start_as_the_owner_grants(
    app, collection, machine, workflows
):
    app.patch_json(EXECUTIONS, {"permissions": {"write": [user_id(app, WRITER)]}}, headers=ADMIN)
    data = start(app, machine, headers=WRITER).json["data"]
    assert data["startedBy"] == user_id(app, WRITER)
    app.patch_json(
        EXECUTIONS, {"permissions": {"record:create": ["system.Everyone"]}}, headers=ADMIN
    )
    data = start(app, machine, headers=ANONYMOUS).json["data"]
    assert data["startedBy"] == "system.Everyone"
    assert workflows.status(data["executionArn"]) == "RUNNING"
    assert len(executions_of(workflows, machine)) == 2


def test_a_state_machine_not_allowed_starts_nothing(app, collection, other_machine, workflows):
    response = start(app, other_machine, expect=400)
    assert response.json["details"][0]["name"] == "stateMachineArn"
    assert executions_of(workflows, other_machine) == []
    assert app.get(url(), headers=ADMIN).json["data"] == []


@pytest.mark.parametrize("backend", ["memory"])  # no write: the backend plays no part
def test_starting_is_off_without_state_machines(app_factory, machine, workflows):
    app = app_factory()
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(EXECUTIONS, {}, headers=ADMIN)
    response = start(app, machine, headers=ADMIN, expect=400)
    assert response.json["details"][0]["name"] == "stateMachineArn"
    assert executions_of(workflows, machine) == []


BAD_FIELDS = [
    ({"stateMachineArn": None}, "stateMachineArn", 400),
    (
        {"stateMachineArn": "arn:aws:states:us-west-2:123456789012:activity:A"},
        "stateMachineArn",
        400,
    ),
    ({"input": "a string"}, "input", 400),
    ({"input": ["a", "list"]}, "input", 400),
    ({"input": {"big": "x" * 300_000}}, "input", 400),
    *[({field: "RUNNING"}, field, 403) for field in executions.EXECUTION_PLUGIN_FIELDS],
]


@pytest.mark.parametrize("backend", ["memory"])  # no write: the backend plays no part
def test_bad_fields_and_plugin_fields_start_nothing(app, collection, machine, workflows):
    for data, field, status in BAD_FIELDS:
        for record_id in (None, "by-put"):
            response = start(app, machine, record_id, expect=status, **data)
            assert response.json["details"][0]["name"] == field, data
    response = start(app, machine, "x" * 81, expect=400)  # the execution's name: 80 at most
    assert response.json["details"][0]["name"] == "id"
    # Kinto refuses a write whose precondition fails: nothing is started before it.
    headers = {**AUTHOR, "If-Match": '"1"'}
    app.put_json(url("r"), {"data": {"stateMachineArn": machine}}, headers=headers, status=412)
    assert executions_of(workflows, machine) == []
    assert app.get(url(), headers=ADMIN).json["data"] == []


@pytest.mark.parametrize("backend", ["memory"])  # no write: the backend plays no part
def test_the_collection_schema_is_checked_before_starting(app_factory, machine, workflows):
    app = app_factory(
        **{
            "stepfunction.state_machines": machine,
            "experimental_collection_schema_validation": "true",
        }
    )
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    schema = {
        "type": "object",
        "required": ["ticket"],
        "properties": {"ticket": {"type": "string"}},
    }
    app.put_json(EXECUTIONS, {"data": {"schema": schema}}, headers=ADMIN)
    response = start(app, machine, headers=ADMIN, expect=400)
    assert "ticket" in response.json["message"]
    assert executions_of(workflows, machine) == []
    data = start(app, machine, headers=ADMIN, ticket="T-1").json["data"]
    assert workflows.status(data["executionArn"]) == "RUNNING"


def test_step_functions_unavailable_is_a_503_and_no_record(app, collection, machine, workflows):
    workflows.emulator.inject_fault("StartExecution", count=3)
    response = start(app, machine, "later", expect=503)
    assert response.headers["Retry-After"]
    app.get(url("later"), headers=ADMIN, status=404)
    assert executions_of(workflows, machine) == []
    # StartExecution ran, its reply lost: 503, no record; the retried PUT gets that very
    # execution (AWS's idempotency for one name and input), never a second one.
    workflows.emulator.inject_fault("StartExecution", count=3, applied=True)
    start(app, machine, "later", expect=503)
    app.get(url("later"), headers=ADMIN, status=404)
    [started] = executions_of(workflows, machine)
    data = start(app, machine, "later").json["data"]
    assert data["executionArn"] == started["executionArn"]
    assert len(executions_of(workflows, machine)) == 1


def test_batch_requests_follow_the_same_rules(app, collection, machine, workflows):
    def batch(headers, record_id):
        body = {"data": {"stateMachineArn": machine}}
        request = {"method": "PUT", "path": url(record_id), "body": body}
        return app.post_json("/batch", {"requests": [request]}, headers=headers).json

    for headers, status in ((READER, 403), (STRANGER, 403), (ANONYMOUS, 401)):
        assert batch(headers, "b")["responses"][0]["status"] == status
    assert executions_of(workflows, machine) == []
    response = batch(AUTHOR, "b")["responses"][0]
    assert response["status"] == 201
    assert response["body"]["data"]["status"] == "RUNNING"
    assert len(executions_of(workflows, machine)) == 1
    patch = {"method": "PATCH", "path": url("b"), "body": {"data": {"status": "SUCCEEDED"}}}
    responses = app.post_json("/batch", {"requests": [patch]}, headers=AUTHOR).json["responses"]
    assert responses[0]["status"] == 403
    assert app.get(url("b"), headers=AUTHOR).json["data"]["status"] == "RUNNING"


# Changing a started execution's record.


def test_protected_fields_never_change(app, collection, machine, workflows):
    record = start(app, machine, "r").json["data"]
    before = acl_of(app, "r")
    json_patch = {"Content-Type": "application/json-patch+json"}
    for field in executions.PROTECTED:
        for headers in (AUTHOR, ADMIN):
            response = app.patch_json(
                url("r"), {"data": {field: "x"}}, headers=headers, status=403
            )
            assert response.json["details"][0]["name"] == field
            body = [{"op": "add", "path": f"/data/{field}", "value": "x"}]
            app.patch_json(url("r"), body, headers={**headers, **json_patch}, status=403)
            changed = {**record, field: "x"}
            app.put_json(url("r"), {"data": changed}, headers=headers, status=403)
    assert app.get(url("r"), headers=ADMIN).json["data"] == record
    assert acl_of(app, "r") == before
    assert len(executions_of(workflows, machine)) == 1


def test_other_fields_permissions_and_deletes_as_kinto_allows(app, collection, machine, workflows):
    record = start(app, machine, "r").json["data"]
    writer = user_id(app, WRITER)
    app.patch_json(
        url("r"), {"data": {"note": "hi"}, "permissions": {"write": [writer]}}, headers=AUTHOR
    )
    data = app.patch_json(url("r"), {"data": {"note": "mine"}}, headers=WRITER).json["data"]
    assert data["note"] == "mine" and data["status"] == "RUNNING"
    app.patch_json(url("r"), {"data": {"note": "no"}}, headers=READER, status=403)
    app.delete(url("r"), headers=READER, status=403)
    # Deleting the record does not stop its execution.
    app.delete(url("r"), headers=WRITER)
    assert workflows.status(record["executionArn"]) == "RUNNING"


# Stopping.


def stops(workflows):
    return workflows.emulator.calls.count("StopExecution")


def test_the_author_and_writers_stop(app, collection, machine, workflows):
    record = start(app, machine, "r").json["data"]
    before = acl_of(app, "r")
    body = {"error": "Cancelled", "cause": "Not needed any more"}

    data = app.post_json(stop_url("r"), body, headers=AUTHOR).json["data"]

    assert data["status"] == "ABORTED"
    assert (data["error"], data["cause"]) == ("Cancelled", "Not needed any more")
    described = workflows.sfn.describe_execution(executionArn=record["executionArn"])
    assert described["status"] == "ABORTED"
    assert (described["error"], described["cause"]) == ("Cancelled", "Not needed any more")
    assert data["stopDate"] == executions.iso(described["stopDate"])
    assert data["last_modified"] > record["last_modified"]
    assert app.get(url("r"), headers=READER).json["data"] == data
    assert acl_of(app, "r") == before

    # A writer of the record, with an empty body.
    record = start(app, machine, "w").json["data"]
    app.patch_json(url("w"), {"permissions": {"write": [user_id(app, WRITER)]}}, headers=AUTHOR)
    before = acl_of(app, "w")
    data = app.post_json(stop_url("w"), {}, headers=WRITER).json["data"]
    assert data["status"] == "ABORTED" and "error" not in data
    assert workflows.status(record["executionArn"]) == "ABORTED"
    assert acl_of(app, "w") == before


def test_nobody_else_stops_anything(app, collection, machine, workflows):
    record = start(app, machine, "r").json["data"]
    workflows.emulator.reset_calls()
    for headers, status in ((READER, 403), (STRANGER, 403), (ANONYMOUS, 401), (WRITER, 403)):
        app.post_json(stop_url("r"), {}, headers=headers, status=status)
    assert workflows.emulator.calls == []
    assert workflows.status(record["executionArn"]) == "RUNNING"
    assert app.get(url("r"), headers=ADMIN).json["data"] == record
    app.post_json(stop_url("missing"), {}, headers=READER, status=404)  # as a GET says
    app.get(url("missing"), headers=READER, status=404)
    steps = "/buckets/stepfunction/collections/manual_steps/records/r/stepfunction/stop"
    app.post_json(steps, {}, headers=ADMIN, status=404)


def test_stopping_an_ended_execution_is_a_conflict(app, collection, machine, workflows):
    start(app, machine, "r")
    app.post_json(stop_url("r"), {}, headers=AUTHOR)
    response = app.post_json(stop_url("r"), {}, headers=AUTHOR, status=409)
    assert response.json["details"] == {"status": "ABORTED"}
    assert stops(workflows) == 1
    # Stopped elsewhere, the record still RUNNING: DescribeExecution says so, nothing sent,
    # and the record now says how it ended.
    record = start(app, machine, "elsewhere").json["data"]
    workflows.sfn.stop_execution(executionArn=record["executionArn"], error="Elsewhere")
    response = app.post_json(stop_url("elsewhere"), {}, headers=AUTHOR, status=409)
    assert response.json["details"] == {"status": "ABORTED"}
    assert stops(workflows) == 2  # the test's own
    data = app.get(url("elsewhere"), headers=AUTHOR).json["data"]
    assert (data["status"], data["error"]) == ("ABORTED", "Elsewhere")


@pytest.mark.parametrize("backend", ["memory"])  # no write: the backend plays no part
def test_stop_bodies_are_json_and_checked(app, collection, machine, workflows):
    record = start(app, machine, "r").json["data"]
    for content_type, body in (
        ("text/plain", "{}"),
        ("application/x-www-form-urlencoded", "error=x"),
        ("application/merge-patch+json", "{}"),
    ):
        headers = {**AUTHOR, "Content-Type": content_type}
        response = app.post(stop_url("r"), body, headers=headers, status=415)
        assert response.json["code"] == 415
    for body in (
        {"error": "x" * 257},
        {"cause": "x" * 32769},
        {"error": 1},
        {"cause": ["a"]},
        {"output": {}},
        [],
    ):
        response = app.post_json(stop_url("r"), body, headers=AUTHOR, status=400)
        assert response.json["errno"] == 107, body
    assert stops(workflows) == 0
    body = {"error": "x" * 256, "cause": "y" * 32768}
    data = app.post_json(stop_url("r"), body, headers=AUTHOR).json["data"]
    assert data["cause"] == "y" * 32768
    described = workflows.sfn.describe_execution(executionArn=record["executionArn"])
    assert described["cause"] == "y" * 32768


def test_step_functions_unavailable_stops_nothing(app, collection, machine, workflows):
    record = start(app, machine, "r").json["data"]
    workflows.emulator.inject_fault("StopExecution", count=3)
    response = app.post_json(stop_url("r"), {}, headers=AUTHOR, status=503)
    assert response.headers["Retry-After"]
    assert workflows.status(record["executionArn"]) == "RUNNING"
    assert app.get(url("r"), headers=AUTHOR).json["data"]["status"] == "RUNNING"


@pytest.mark.parametrize("backend", ["memory"])  # no write: the backend plays no part
def test_api_document_describes_the_stop(app):
    post = app.get("/__api__").json["paths"][STOP_PATH]["post"]
    body = next(p for p in post["parameters"] if p["in"] == "body")["schema"]
    assert set(body["properties"]) == {"error", "cause"}
    assert body["properties"]["error"]["maxLength"] == 256
    assert {"200", "400", "401", "403", "404", "409", "415", "503"} <= set(post["responses"])
    assert post["consumes"] == ["application/json"]


@pytest.mark.parametrize("backend", ["memory"])
def test_stop_never_answers_5xx(app, collection, machine):
    """Generated bodies and ids, as the author, a reader and anonymously."""
    start(app, machine, "r")
    schema = schemathesis.openapi.from_wsgi("/v1/__api__", app.app)
    operation = schema[STOP_PATH]["POST"]

    @given(case=operation.as_strategy(), real=st.booleans())
    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def stop(case, real):
        if real:  # on the executions collection, half the time
            case.path_parameters = {
                **case.path_parameters,
                "bucket_id": "stepfunction",
                "collection_id": "executions",
                "id": "r",
            }
        for headers in (READER, AUTHOR, ANONYMOUS):
            response = case.call(headers=headers)
            assert response.status_code < 500 or response.status_code == 503, response.text

    stop()


# For the plugin's own callers (webhooks).


def start_record(app, record_id, machine, payload):
    registry = app.app.registry
    return transactions.commit(
        registry,
        lambda request: executions.start_record(
            request, record_id, machine, payload, "webhook:deploys"
        ),
    )


def test_start_record_creates_once(app, collection, machine, other_machine, workflows):
    record, created = start_record(app, "hook-1", machine, {"sha": "abc"})
    assert created is True
    assert record["startedBy"] == "webhook:deploys"
    assert record["status"] == "RUNNING"
    described = workflows.sfn.describe_execution(executionArn=record["executionArn"])
    assert json.loads(described["input"]) == {"sha": "abc"}
    assert app.get(url("hook-1"), headers=READER).json["data"] == record
    history = app.get("/buckets/stepfunction/history", headers=ADMIN).json["data"]
    assert any(entry["uri"] == url("hook-1") for entry in history)

    replayed, created = start_record(app, "hook-1", machine, {"sha": "abc"})
    assert created is False
    assert replayed == record
    assert len(executions_of(workflows, machine)) == 1
    with pytest.raises(HTTPBadRequest):
        start_record(app, "hook-2", other_machine, {})


def test_start_record_of_a_record_whose_execution_ended_adopts_it(
    app, collection, machine, workflows
):
    """The record lost (deleted) after its execution ended: the same name and input again
    make the record of that execution, never a second one."""
    record, _ = start_record(app, "hook-3", machine, {})
    workflows.sfn.stop_execution(executionArn=record["executionArn"])
    wait_for(lambda: workflows.status(record["executionArn"]) == "ABORTED")
    app.delete(url("hook-3"), headers=ADMIN)
    again, created = start_record(app, "hook-3", machine, {})
    assert created is True
    assert again["executionArn"] == record["executionArn"]
    assert again["status"] == "ABORTED"
    assert len(executions_of(workflows, machine)) == 1


# Pure functions.


def test_iso_dates():
    import datetime

    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC)
    assert executions.iso(moment) == "2026-01-02T03:04:05.678+00:00"
    assert executions.iso(moment.replace(tzinfo=None)) == "2026-01-02T03:04:05.678+00:00"
    assert executions.iso(1767323045678) == "2026-01-02T03:04:05.678+00:00"
    assert executions.iso(None) is None


def test_execution_arn():
    machine = "arn:aws:states:us-west-2:123456789012:stateMachine:Review"
    assert executions.execution_arn(machine, "r-1") == (
        "arn:aws:states:us-west-2:123456789012:execution:Review:r-1"
    )


def test_start_problems():
    settings = Settings(state_machines=("arn:aws:states:*:*:stateMachine:Allowed*",))
    allowed = f"arn:aws:states:{REGION}:123456789012:stateMachine:AllowedOne"
    other = f"arn:aws:states:{REGION}:123456789012:stateMachine:Other"
    assert executions.start_problems({"stateMachineArn": allowed}, settings) == {}
    assert set(executions.start_problems({"stateMachineArn": other}, settings)) == {
        "stateMachineArn"
    }
    assert set(executions.start_problems({"stateMachineArn": allowed, "input": 1}, settings)) == {
        "input"
    }
    problems = executions.start_problems({"stateMachineArn": allowed, "status": "x"}, settings)
    assert set(problems) == {"status"}
    assert executions.start_problems({"stateMachineArn": allowed}, Settings()) != {}


def test_described_fields():
    import datetime

    moment = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    fields = executions.described(
        {
            "executionArn": "arn:x",
            "status": "FAILED",
            "startDate": moment,
            "stopDate": moment,
            "output": None,
            "error": "Oops",
            "cause": "Because",
        }
    )
    assert fields == {
        "executionArn": "arn:x",
        "status": "FAILED",
        "startDate": "2026-01-02T00:00:00.000+00:00",
        "stopDate": "2026-01-02T00:00:00.000+00:00",
        "error": "Oops",
        "cause": "Because",
    }
    assert executions.described({"executionArn": "a", "status": "SUCCEEDED", "output": "[1]"})[
        "output"
    ] == [1]
