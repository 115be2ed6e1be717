"""Issue 13's outcomes against the newer features: executions as records, signed webhooks,
decisions by several people, the steps listing. Each test is an attack (by a stranger, a
careless operator or a storm) and what must hold after it."""

import gzip
import json
import logging

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kinto.core.testing import get_user_headers

from stepfunction import records, transactions
from tests import test_delegation, test_execution_status
from tests.conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    STRANGER,
    answer_url,
    lose_race_once,
    permissions_of,
    user_id,
    wait_for,
)
from tests.test_answer_truth import serving
from tests.test_executions import AUTHOR, EXECUTIONS, acl_of, executions_of, stop_url, url
from tests.test_webhooks import PAYLOAD, signed_headers, webhook_settings


@pytest.fixture
def machine(workflows):
    return workflows.activity_machine(workflows.activity(), timeout=8)


def executions_app(app_factory, machine, **extra):
    app = app_factory(**{"stepfunction.state_machines": machine, **extra})
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    permissions = {"record:create": [user_id(app, AUTHOR)]}
    app.put_json(EXECUTIONS, {"permissions": permissions}, headers=ADMIN)
    return app


@pytest.fixture
def app(app_factory, machine):
    return executions_app(app_factory, machine)


def stored_executions(app):
    return app.app.registry.storage.list_all(resource_name="record", parent_id=EXECUTIONS)


def started(app, machine, record_id="running", **data):
    body = {"data": {"stateMachineArn": machine, **data}}
    return app.put_json(url(record_id), body, headers=AUTHOR).json["data"]


following = test_execution_status.following  # a fixture: an app whose worker follows a queue


# --- The record tells the truth: a reply that is not Step Functions' ------------------------

PAGES = ["html", "amz-json-without-request-id"]


@pytest.fixture(params=PAGES)
def web_page(request):
    """A real HTTP server that is not Step Functions (test_answer_truth's)."""
    with serving(request.param) as url:
        yield url


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_start_with_a_web_page_as_endpoint_writes_nothing(
    app_factory, machine, web_page, workflows, method
):
    app = executions_app(app_factory, machine, **{"stepfunction.aws_endpoint_url": web_page})
    body = {"data": {"id": "paged", "stateMachineArn": machine, "input": {"n": 1}}}
    send = app.post_json if method == "POST" else app.put_json
    target = url() if method == "POST" else url("paged")
    response = send(target, body, headers=AUTHOR, status=502)
    assert response.json["errno"] == 201
    assert stored_executions(app) == []
    assert executions_of(workflows, machine) == []


def test_stop_with_a_web_page_as_endpoint_writes_nothing(
    app_factory, machine, web_page, workflows
):
    app = executions_app(app_factory, machine, **{"stepfunction.aws_endpoint_url": web_page})
    arn = workflows.sfn.start_execution(stateMachineArn=machine, name="running")["executionArn"]
    data = {"stateMachineArn": machine, "input": {}, "executionArn": arn, "status": "RUNNING"}
    body = {"data": data, "permissions": {"write": [user_id(app, AUTHOR)]}}
    transactions.commit(  # the record as the plugin writes it when it starts an execution
        app.app.registry,
        lambda request: records.write_record(
            request, "stepfunction", "executions", "running", body, create=True
        ),
    )
    record = app.get(url("running"), headers=AUTHOR).json["data"]
    before = acl_of(app, "running")
    response = app.post_json(stop_url("running"), {}, headers=AUTHOR, status=502)
    assert response.json["errno"] == 201
    assert app.get(url("running"), headers=AUTHOR).json["data"] == record
    assert acl_of(app, "running") == before
    assert workflows.status(arn) == "RUNNING"


@pytest.mark.parametrize("backend", ["memory"])
def test_webhook_with_a_web_page_as_endpoint_starts_and_writes_nothing(
    app_factory, machine, web_page, workflows
):
    app = app_factory(**webhook_settings(machine), **{"stepfunction.aws_endpoint_url": web_page})
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(EXECUTIONS, {}, headers=ADMIN)
    body = json.dumps(PAYLOAD).encode()
    headers = {"Content-Type": "application/json", **signed_headers("gh", body)}
    response = app.post("/stepfunction/webhooks/gh", body, headers=headers, status=502)
    assert response.json["errno"] == 201
    assert stored_executions(app) == []
    assert executions_of(workflows, machine) == []


# --- The guard reads what Kinto writes: the stop and delegate endpoints ---------------------

BODIES = {
    "utf-16": (lambda s: s.encode("utf-16"), "application/json; charset=utf-16", None),
    "latin-1": (lambda s: s.encode("latin-1"), "application/json; charset=latin-1", None),
    "gzip": (lambda s: gzip.compress(s.encode()), "application/json", "gzip"),
    "text-plain": (str.encode, "text/plain", None),
    "form": (str.encode, "application/x-www-form-urlencoded", None),
}


@pytest.mark.parametrize("how", sorted(BODIES))
def test_stop_in_another_charset_or_coding_is_refused_and_stops_nothing(
    app, machine, workflows, how
):
    record = started(app, machine)
    before = acl_of(app, "running")
    encode, content_type, coding = BODIES[how]
    headers = {**AUTHOR, "Content-Type": content_type}
    if coding:
        headers["Content-Encoding"] = coding
    body = encode(json.dumps({"error": "Payé", "cause": "é"}, ensure_ascii=False))
    response = app.post(stop_url("running"), body, headers=headers, expect_errors=True)
    assert response.status_int in (400, 415), response.text
    assert "errno" in response.json
    assert app.get(url("running"), headers=AUTHOR).json["data"] == record
    assert acl_of(app, "running") == before
    assert workflows.status(record["executionArn"]) == "RUNNING"


# --- Hostile execution input --------------------------------------------------------------


def nested(depth):
    value = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [100, 990])
def test_deeply_nested_input_is_a_400_and_starts_nothing(app, machine, workflows, depth):
    """Kinto's parser reads about 1,000 levels, Python's json and copies fewer: refused."""
    deep = '{"a": ' * depth + "{}" + "}" * depth
    text = f'{{"data": {{"stateMachineArn": "{machine}", "input": {deep}}}}}'
    headers = {**AUTHOR, "Content-Type": "application/json"}
    for send, target in ((app.post, url()), (app.put, url("hostile"))):
        response = send(target, text, headers=headers, expect_errors=True)
        assert response.status_int == 400, response.text[:300]
        assert response.json["errno"] == 107
        assert response.json["details"][0]["name"] == "input"
    assert stored_executions(app) == []
    assert executions_of(workflows, machine) == []
    record = started(app, machine, input=nested(99))  # 100 levels: started
    assert record["status"] == "RUNNING"


def assert_refused_and_nothing_started(app, workflows, machine, sends, body, headers):
    """Each ``(send, url)`` of ``body`` is a 400 (errno 107): no record, no execution."""
    for send, target in sends:
        response = send(target, body, headers=headers, expect_errors=True)
        assert response.status_int == 400, response.text[:300]
        assert response.json["errno"] == 107
    assert stored_executions(app) == []
    assert executions_of(workflows, machine) == []


@pytest.mark.parametrize(
    "data",
    [
        {"input": [1, 2]},
        {"input": "text"},
        {"input": {"big": "x" * 300_000}},
        {"stateMachineArn": {"nested": True}},
        {"stateMachineArn": ["x"]},
    ],
    ids=["list", "string", "huge", "arn-object", "arn-list"],
)
def test_hostile_execution_input_is_a_400_and_starts_nothing(app, machine, workflows, data):
    body = {"data": {"stateMachineArn": machine, **data}}
    sends = ((app.post_json, url()), (app.put_json, url("hostile")))
    assert_refused_and_nothing_started(app, workflows, machine, sends, body, AUTHOR)


@pytest.mark.parametrize("body", [[], "x", 1, None, {"data": []}, {"data": "x"}, {"data": None}])
def test_hostile_execution_bodies_are_4xx_in_kintos_format(app, machine, workflows, body):
    for send, target in ((app.post_json, url()), (app.put_json, url("hostile"))):
        response = send(target, body, headers=AUTHOR, expect_errors=True)
        assert 400 <= response.status_int < 500, response.text[:300]
        assert "errno" in response.json
    assert stored_executions(app) == []
    assert executions_of(workflows, machine) == []


@pytest.mark.parametrize(
    "record_id", ["a" * 81, "ünïcode", "with space", "a.b", "a:b", "../x", "-lead", "x" * 200]
)
def test_odd_record_ids_start_nothing(app, machine, workflows, record_id):
    body = {"data": {"id": record_id, "stateMachineArn": machine}}
    response = app.post_json(url(), body, headers=AUTHOR, expect_errors=True)
    assert response.status_int == 400, response.text[:300]
    assert "errno" in response.json
    assert stored_executions(app) == []
    assert executions_of(workflows, machine) == []


# --- Decisions: the delegate and answer endpoints, and the plugin's fields ------------------

SECOND = get_user_headers("second")


@pytest.fixture
def steps_app(app_factory):
    app = app_factory()
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {"permissions": {"read": [user_id(app, REVIEWER)]}}, headers=ADMIN)
    return app


def quorum_step(app, token, **fields):
    writers = [user_id(app, REVIEWER), user_id(app, SECOND)]
    body = {
        "data": {"taskToken": token, "subject": "Pay", "quorum": 2, "delegation": True, **fields},
        "permissions": {"write": writers},
    }
    return app.post_json(f"{STEPS}/records", body, headers=ADMIN).json["data"]


def step_and_acl(app, record_id):
    response = app.get(f"{STEPS}/records/{record_id}", headers=ADMIN)
    acl = {k: sorted(v) for k, v in response.json["permissions"].items()}
    return response.json["data"], acl


@pytest.mark.parametrize("endpoint", ["delegate", "answer"])
@pytest.mark.parametrize("how", sorted(BODIES))
def test_delegate_and_answer_in_another_charset_or_coding_are_refused(
    steps_app, callback, workflows, emulator, endpoint, how
):
    token, execution = callback()
    record = quorum_step(steps_app, token)
    before = step_and_acl(steps_app, record["id"])
    encode, content_type, coding = BODIES[how]
    headers = {**REVIEWER, "Content-Type": content_type}
    if coding:
        headers["Content-Encoding"] = coding
    body = {"to": "mallory@example.com", "comment": "é"}
    if endpoint == "answer":
        body = {"answer": "SUCCEED", "comment": "Payé"}
    target = answer_url(record["id"]) + ("/delegate" if endpoint == "delegate" else "")
    emulator.reset_calls()
    response = steps_app.post(
        target, encode(json.dumps(body, ensure_ascii=False)), headers=headers, expect_errors=True
    )
    assert response.status_int in (400, 415), response.text
    assert "errno" in response.json
    assert step_and_acl(steps_app, record["id"]) == before
    assert not [c for c in emulator.calls if c.startswith("SendTask")]
    assert workflows.status(execution) == "RUNNING"


JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
FORGED = {
    "votes": [{"by": "account:x", "answer": "SUCCEED", "at": "2020-01-01T00:00:00+00:00"}],
    "delegations": [{"from": "a", "to": "b", "at": "2020-01-01T00:00:00+00:00"}],
    "escalated": {"at": "2020-01-01T00:00:00+00:00", "to": ["x@example.com"]},
}


@pytest.mark.parametrize("how", ["put", "merge-patch", "json-patch", "batch-put", "batch-patch"])
@pytest.mark.parametrize("field", sorted(FORGED))
def test_votes_delegations_and_escalation_are_forged_on_no_write_path(
    steps_app, callback, how, field
):
    token, _ = callback()
    record = quorum_step(steps_app, token)
    before = step_and_acl(steps_app, record["id"])
    path = f"{STEPS}/records/{record['id']}"
    value = FORGED[field]
    for headers in (REVIEWER, ADMIN):
        if how == "put":
            response = steps_app.put_json(
                path, {"data": {**record, field: value}}, headers=headers, status="*"
            )
        elif how == "merge-patch":
            response = steps_app.patch(
                path,
                json.dumps({"data": {field: value}}),
                headers={**headers, "Content-Type": MERGE_PATCH},
                status="*",
            )
        elif how == "json-patch":
            ops = [{"op": "add", "path": f"/data/{field}", "value": value}]
            response = steps_app.patch(
                path, json.dumps(ops), headers={**headers, "Content-Type": JSON_PATCH}, status="*"
            )
        else:
            method = "PUT" if how == "batch-put" else "PATCH"
            data = {**record, field: value} if method == "PUT" else {field: value}
            batch = {"requests": [{"method": method, "path": path, "body": {"data": data}}]}
            reply = steps_app.post_json("/batch", batch, headers=headers).json["responses"][0]
            assert reply["status"] == 403, reply
            continue
        assert response.status_int == 403, response.text
        assert response.json["errno"] == 121
    assert step_and_acl(steps_app, record["id"]) == before


def test_searching_the_inbox_for_a_task_token_finds_nothing(steps_app, callback):
    token, _ = callback()
    record = quorum_step(steps_app, token, subject="§ ¶")  # no character a token has
    base = f"{STEPS}/stepfunction/steps"
    for path in (base, f"{STEPS}/stepfunction/inbox"):
        assert record["id"] in steps_app.get(path, headers=REVIEWER).text  # listed without q
        for query in (token, token[:8], token[:1], token[-8:]):
            response = steps_app.get(path, params={"q": query}, headers=REVIEWER)
            assert response.json["data"] == [] and response.json["total"] == 0, query
            assert token not in response.text
    listed = steps_app.get(base, headers=REVIEWER).text
    assert token not in listed and token[:20] not in listed


# --- Kinto's timestamp race after Step Functions accepted the call (PostgreSQL's) ----------


@pytest.fixture
def history_race(monkeypatch):
    """``history_race(app)``: the history plugin's next entry loses Kinto's timestamp race
    once (a real unique violation in PostgreSQL); returns the list that says it did."""

    def arm(app):
        return lose_race_once(monkeypatch, app.app.registry.storage)

    return arm


def history_of(app, uri, action="update"):
    params = {"uri": uri, "action": action}
    return app.get("/buckets/stepfunction/history", params=params, headers=ADMIN).json["data"]


def no_errors(caplog):
    """No error of the plugin's nor Kinto's (the local Step Functions logs its own)."""
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    return not [r for r in errors if r.name.startswith(("stepfunction", "kinto.core"))]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_an_accepted_stop_whose_history_loses_the_race_is_recorded(
    app, machine, workflows, emulator, history_race, caplog
):
    record = started(app, machine)
    before = acl_of(app, "running")
    raced = history_race(app)
    emulator.reset_calls()
    with caplog.at_level(logging.INFO):
        response = app.post_json(stop_url("running"), {"cause": "no"}, headers=AUTHOR)
    assert raced and emulator.calls.count("StopExecution") == 1
    assert response.json["data"]["status"] == "ABORTED"
    stored = app.get(url("running"), headers=AUTHOR).json["data"]
    assert stored["status"] == "ABORTED" and stored["cause"] == "no"
    assert acl_of(app, "running") == before
    assert workflows.status(record["executionArn"]) == "ABORTED"
    [entry] = history_of(app, url("running"))
    assert entry["target"]["data"]["status"] == "ABORTED"
    assert no_errors(caplog), caplog.text


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_quorum_th_approval_whose_history_loses_the_race_is_recorded(
    steps_app, callback, workflows, emulator, history_race, caplog
):
    token, execution = callback()
    record = quorum_step(steps_app, token)
    _, before = step_and_acl(steps_app, record["id"])
    steps_app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    raced = history_race(steps_app)
    emulator.reset_calls()
    with caplog.at_level(logging.INFO):
        response = steps_app.post_json(
            answer_url(record["id"]), {"answer": "SUCCEED"}, headers=SECOND
        )
    assert raced and emulator.calls == ["SendTaskSuccess"]
    assert response.json["data"]["status"] == "SUCCEED"
    stored, acl = step_and_acl(steps_app, record["id"])
    assert stored["status"] == "SUCCEED" and len(stored["votes"]) == 2
    assert acl == before
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    assert no_errors(caplog), caplog.text


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_delegation_whose_history_loses_the_race_is_recorded(
    steps_app, callback, history_race, caplog
):
    token, _ = callback()
    record = quorum_step(steps_app, token)
    raced = history_race(steps_app)
    with caplog.at_level(logging.INFO):
        response = steps_app.post_json(
            answer_url(record["id"]) + "/delegate",
            {"to": "carol@example.com"},
            headers=REVIEWER,
        )
    assert raced
    stored, acl = step_and_acl(steps_app, record["id"])
    assert response.json["data"]["delegations"] == stored["delegations"]
    assert stored["delegations"][0]["to"] == "carol@example.com"
    assert user_id(steps_app, REVIEWER) not in acl["write"]  # the delegator's write, handed on
    assert user_id(steps_app, SECOND) in acl["write"]
    path = f"{STEPS}/records/{record['id']}"
    assert len(history_of(steps_app, path)) == 1
    assert no_errors(caplog), caplog.text


# --- Reconciliation: DescribeExecution's reply is believed only when it is Step Functions' --


def plugin_write(app, collection_id, record_id, data, write):
    body = {"data": data, "permissions": {"write": write}}
    transactions.commit(
        app.app.registry,
        lambda request: records.write_record(
            request, "stepfunction", collection_id, record_id, body, create=True
        ),
    )


def followed(app, machine, workflows):
    """Two running executions, each with its execution record and a step waiting on it."""
    app.put_json(STEPS, {}, headers=ADMIN)
    arns = {}
    for name in ("asked", "other"):
        arn = workflows.sfn.start_execution(stateMachineArn=machine, name=name)["executionArn"]
        arns[name] = arn
        data = {"stateMachineArn": machine, "input": {}, "executionArn": arn}
        plugin_write(app, "executions", name, {**data, "status": "RUNNING"}, ["account:x"])
        step = {
            "subject": name,
            "executionArn": arn,
            "activityArn": f"arn:aws:states:us-west-2:123456789012:activity:{name}",
        }
        plugin_write(app, "manual_steps", f"step-{name}", step, ["account:x"])
    return arns


def snapshot(app):
    storage = app.app.registry.storage
    permission = app.app.registry.permission
    found = {}
    for parent in (EXECUTIONS, STEPS):
        for record in storage.list_all(resource_name="record", parent_id=parent):
            uri = f"{parent}/records/{record['id']}"
            found[uri] = (record, permission.get_object_permissions(uri))
    return found


@pytest.mark.parametrize("page", [*PAGES, "step-functions"])
def test_reconciliation_with_a_web_page_as_endpoint_changes_nothing(
    app_factory, machine, workflows, emulator, page
):
    """The executions ended, but what answered DescribeExecution is not Step Functions: no
    execution record changes, no step closes (a reconciliation pass believes nothing). With
    Step Functions itself, the same pass repairs both."""
    from stepfunction.worker.status import reconcile
    from stepfunction.worker.supervisor import Worker

    with serving(page) as endpoint:
        if page == "step-functions":
            endpoint = emulator.endpoint_url
        app = executions_app(app_factory, machine, **{"stepfunction.aws_endpoint_url": endpoint})
        arns = followed(app, machine, workflows)
        for arn in arns.values():
            workflows.sfn.stop_execution(executionArn=arn)
        before = snapshot(app)
        repaired = reconcile(Worker(app.app.registry))
        after = snapshot(app)
    if page == "step-functions":
        assert repaired == 2
        assert {uri: acl for uri, (_, acl) in after.items()} == {
            uri: acl for uri, (_, acl) in before.items()
        }
        assert {record.get("status") for record, _ in after.values()} == {"ABORTED", "CLOSED"}
    else:
        assert repaired == 0
        assert after == before


@pytest.mark.parametrize("how", ["post", "put", "batch"])
@pytest.mark.parametrize("field", sorted(FORGED))
def test_a_new_step_comes_with_no_votes_delegations_nor_escalation(
    steps_app, callback, how, field
):
    """Even its author can't create a step that says who voted, delegated or was escalated
    to: those are the plugin's records of what happened."""
    token, _ = callback()
    data = {"taskToken": token, "subject": "Pay", "quorum": 2, field: FORGED[field]}
    body = {"data": data, "permissions": {"write": [user_id(steps_app, REVIEWER)]}}
    path = f"{STEPS}/records/forged"
    if how == "post":
        response = steps_app.post_json(f"{STEPS}/records", body, headers=ADMIN, status="*")
        status = response.status_int
    elif how == "put":
        response = steps_app.put_json(path, body, headers=ADMIN, status="*")
        status = response.status_int
    else:
        batch = {"requests": [{"method": "PUT", "path": path, "body": body}]}
        [reply] = steps_app.post_json("/batch", batch, headers=ADMIN).json["responses"]
        status = reply["status"]
    assert status in (400, 403), (status, field)
    assert steps_app.get(f"{STEPS}/records", headers=ADMIN).json["data"] == []


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("how", sorted(BODIES))
def test_an_execution_written_in_another_charset_or_coding_starts_nothing(
    app, machine, workflows, method, how
):
    """An execution must start with the input Kinto stores, or not at all."""
    encode, content_type, coding = BODIES[how]
    headers = {**AUTHOR, "Content-Type": content_type}
    if coding:
        headers["Content-Encoding"] = coding
    body = {"data": {"stateMachineArn": machine, "input": {"payee": "Zoë"}}}
    target = url() if method == "POST" else url("charset")
    text = encode(json.dumps(body, ensure_ascii=False))
    response = app.request(target, method=method, body=text, headers=headers, expect_errors=True)
    assert response.status_int in (400, 415), response.text
    assert "errno" in response.json
    assert stored_executions(app) == []
    assert executions_of(workflows, machine) == []


@pytest.mark.parametrize("backend", ["memory"])
def assert_webhook_refused(app_factory, machine, workflows, body):
    """A signed delivery of ``body`` is a 400 (errno 107): no record, no execution."""
    app = app_factory(**webhook_settings(machine))
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(EXECUTIONS, {}, headers=ADMIN)
    headers = {"Content-Type": "application/json", **signed_headers("gh", body)}
    response = app.post("/stepfunction/webhooks/gh", body, headers=headers, expect_errors=True)
    assert response.status_int == 400, response.text[:300]
    assert response.json["errno"] == 107
    assert stored_executions(app) == []
    assert executions_of(workflows, machine) == []


@pytest.mark.parametrize("depth", [100, 990, 5000])
def test_a_webhook_body_nested_too_deep_is_a_400_and_starts_nothing(
    app_factory, machine, workflows, depth
):
    body = ('{"a": ' * depth + "{}" + "}" * depth).encode()
    assert_webhook_refused(app_factory, machine, workflows, body)


# --- Sweeps: generated bodies never get a 5xx -----------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    ["id", "input", "stateMachineArn", "executionArn", "status", "startedBy", "note", "data"]
)


@pytest.mark.parametrize("backend", ["memory"])
def test_generated_execution_records_never_get_a_5xx_nor_start_another_input(
    app, machine, workflows
):
    @given(data=st.dictionaries(FIELDS, JSON_VALUES, max_size=4), arn=st.booleans())
    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def create(data, arn):
        if arn:
            data = {**data, "stateMachineArn": machine}
        response = app.post_json(url(), {"data": data}, headers=AUTHOR, expect_errors=True)
        assert response.status_int < 500, response.text[:300]
        assert "errno" in response.json or response.status_int == 201
        if response.status_int == 201:
            stored = response.json["data"]
            described = workflows.sfn.describe_execution(executionArn=stored["executionArn"])
            assert json.loads(described["input"]) == stored["input"]

    create()


@pytest.mark.parametrize("backend", ["memory"])
def test_the_delegate_endpoint_never_answers_5xx(steps_app, callback):
    token, _ = callback()
    record = quorum_step(steps_app, token)
    before = step_and_acl(steps_app, record["id"])
    schema = schemathesis.openapi.from_wsgi("/v1/__api__", steps_app.app)
    operation = schema[
        "/buckets/{bucket_id}/collections/{collection_id}/records/{id}/stepfunction/delegate"
    ]["POST"]

    @given(case=operation.as_strategy(), real=st.booleans())
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def delegate(case, real):
        if real:
            case.path_parameters = {
                "bucket_id": "stepfunction",
                "collection_id": "manual_steps",
                "id": record["id"],
            }
        for headers in (STRANGER, {}):
            response = case.call(headers=headers)
            assert response.status_code < 500, response.text

    delegate()
    assert step_and_acl(steps_app, record["id"]) == before


# --- Status events and descriptions that nest too deep ---------------------------------------


def deep_text(depth):
    return '{"a": ' * depth + "{}" + "}" * depth


def test_a_status_event_nested_too_deep_is_malformed_not_a_crash():
    from stepfunction.status_events import parse_event
    from tests.test_execution_status import event, execution_arn

    assert parse_event(deep_text(5000)) is None  # was RecursionError: the poll loop's
    arn = execution_arn("deep")
    for depth in (100, 990, 5000):
        status = parse_event(event(arn, "SUCCEEDED", output=deep_text(depth)))
        assert status.status == "SUCCEEDED"
        assert status.output == deep_text(depth)  # kept as the text Step Functions sent
    assert parse_event(event(arn, "SUCCEEDED", output=deep_text(99))).output["a"]


def test_an_execution_whose_output_nests_too_deep_is_followed(following):
    """Its record says SUCCEEDED, its output as the JSON text (990 levels: Python's json
    parses it, nothing after it could store it)."""
    from tests.test_execution_status import event, execution_arn

    f = following(events=False)
    arn = execution_arn("deep-output")
    name = f.create_execution_record(arn)
    acl = f.app.get(f"{EXECUTIONS}/records/{name}", headers=ADMIN).json["permissions"]
    f.send(event(arn, "SUCCEEDED", output=deep_text(990)))
    record = wait_for(lambda: (r := f.record(name))["status"] == "SUCCEEDED" and r, 30)
    assert record["output"] == deep_text(990)
    assert f.app.get(f"{EXECUTIONS}/records/{name}", headers=ADMIN).json["permissions"] == acl
    wait_for(f.drained, 30, "the event to be deleted")


NUL_DATA = {
    "input": {"x": "nul\u0000byte"},
    "key": {"input": {"nul\u0000": 1}},
    "note": {"note": ["\u0000"]},
    "deep-note": {"note": "DEEP"},
}


@pytest.mark.parametrize("how", sorted(NUL_DATA))
def test_a_record_postgresql_cant_store_starts_nothing(app, machine, workflows, how):
    """PostgreSQL's JSONB stores no NUL character, and Python's json no value nested too deep:
    such a record was started, then failed to be written (an execution, a 503, no record)."""
    data = {"stateMachineArn": machine, "input": {}, **NUL_DATA[how]}
    deep = '{"a": ' * 990 + "{}" + "}" * 990  # beyond what the test client itself encodes
    body = json.dumps({"data": data}).replace('"DEEP"', deep)
    headers = {**AUTHOR, "Content-Type": "application/json"}
    sends = ((app.post, url()), (app.put, url("nul")))
    assert_refused_and_nothing_started(app, workflows, machine, sends, body, headers)


def test_an_execution_ending_with_a_nul_character_is_followed(following):
    """An output, error or cause holding NUL (``\\u0000`` in the output's JSON, the character
    itself in the others): PostgreSQL refused the record's write, and the event stayed on its
    queue for ever. The output is kept as its JSON text, NUL in a text becomes U+FFFD."""
    from tests.test_execution_status import event, execution_arn

    f = following(events=False)
    names = {}
    for status, detail in (
        ("SUCCEEDED", {"output": json.dumps({"x": "a\u0000b"})}),
        ("FAILED", {"error": "E\u0000", "cause": "c\u0000d"}),
    ):
        arn = execution_arn(f"nul-{status.lower()}")
        names[status] = f.create_execution_record(arn)
        f.send(event(arn, status, **detail))
    done = wait_for(lambda: (r := f.record(names["SUCCEEDED"]))["status"] == "SUCCEEDED" and r)
    assert done["output"] == json.dumps({"x": "a\u0000b"})  # its text: "\\u0000", six characters
    failed = wait_for(lambda: (r := f.record(names["FAILED"]))["status"] == "FAILED" and r)
    assert (failed["error"], failed["cause"]) == ("E\ufffd", "c\ufffdd")
    wait_for(f.drained, 30, "the events to be deleted")


# --- A NUL character in what an accepted call writes (PostgreSQL stores none) ---------------


def test_a_stop_whose_cause_holds_nul_is_refused_before_stopping(app, machine, workflows):
    record = started(app, machine)
    before = acl_of(app, "running")
    for body in ({"cause": "a\u0000b"}, {"error": "E\u0000"}):
        response = app.post_json(stop_url("running"), body, headers=AUTHOR, expect_errors=True)
        assert response.status_int == 400, response.text[:300]
        assert response.json["errno"] == 107
    assert app.get(url("running"), headers=AUTHOR).json["data"] == record
    assert acl_of(app, "running") == before
    assert workflows.status(record["executionArn"]) == "RUNNING"


@pytest.mark.parametrize(
    "body",
    [
        {"answer": "SUCCEED", "comment": "a\u0000b"},
        {"answer": "SUCCEED", "output": {"x": "a\u0000b"}},
        {"answer": "FAIL", "cause": "a\u0000b"},
        {"answer": "FAIL", "error": "E\u0000"},
    ],
    ids=["comment", "output", "cause", "error"],
)
def test_an_answer_holding_nul_is_refused_before_step_functions_hears_of_it(
    steps_app, callback, workflows, emulator, body
):
    """The quorum-th approval (or a veto) with a NUL: Step Functions accepted it, then
    PostgreSQL refused its record (a 503 after the execution went on)."""
    token, execution = callback()
    record = quorum_step(steps_app, token)
    steps_app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=SECOND)
    before = step_and_acl(steps_app, record["id"])
    emulator.reset_calls()
    response = steps_app.post_json(
        answer_url(record["id"]), body, headers=REVIEWER, expect_errors=True
    )
    assert response.status_int == 400, response.text[:300]
    assert response.json["errno"] == 107
    assert step_and_acl(steps_app, record["id"]) == before
    assert not [c for c in emulator.calls if c.startswith("SendTask")]
    assert workflows.status(execution) == "RUNNING"


def test_a_delegation_holding_nul_is_refused(steps_app, callback):
    token, _ = callback()
    record = quorum_step(steps_app, token)
    before = step_and_acl(steps_app, record["id"])
    for body in ({"to": "carol@example.com", "comment": "\u0000"}, {"to": "a\u0000@b.example"}):
        response = steps_app.post_json(
            answer_url(record["id"]) + "/delegate", body, headers=REVIEWER, expect_errors=True
        )
        assert response.status_int == 400, response.text[:300]
    assert step_and_acl(steps_app, record["id"]) == before


decided = test_delegation.decided  # a fixture: a quorum step for Alice and Bob, mailed links


def test_a_link_vote_holding_nul_is_refused_before_step_functions_hears_of_it(
    decided, workflows, emulator
):
    """A rejection's reason with ``%00``: Step Functions failed the execution, then
    PostgreSQL refused the vote's record (a 503 page, a record that says nothing)."""
    from tests.test_links import confirm

    app, record, execution, links = decided(quorum=2)
    before = (test_delegation.record_of(app, record["id"]), permissions_of(app, record["id"]))
    emulator.reset_calls()
    page = confirm(app, links[test_delegation.BOB]["Reject"], reason="no\u0000way", status=400)
    assert "NUL" in page.text
    after = (test_delegation.record_of(app, record["id"]), permissions_of(app, record["id"]))
    assert after == before
    assert not [c for c in emulator.calls if c.startswith("SendTask")]
    assert workflows.status(execution) == "RUNNING"


def test_a_webhook_body_holding_nul_is_a_400_and_starts_nothing(app_factory, machine, workflows):
    """Its execution was started, then PostgreSQL refused its record (503): the sender's
    retries got 503 for ever, an execution ran with no record."""
    body = json.dumps({**PAYLOAD, "comment": "a\u0000b"}).encode()
    assert_webhook_refused(app_factory, machine, workflows, body)
