"""POST /v1/stepfunction/webhooks/{name}: signed deliveries start their execution, once."""

import base64
import collections
import datetime
import hashlib
import hmac
import json
import logging
import re
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import schemathesis
import standardwebhooks
import transaction
import webob
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyramid.exceptions import ConfigurationError
from webtest.http import StopableWSGIServer

from tests.conftest import ADMIN, REVIEWER, app_settings, lose_race_once, make_app
from tests.test_concurrency import all_at_once, kinto_processes


SECRET = "jira-secret-0123456789"
OLD_SECRET = "jira-secret-before-the-rotation"
GITHUB_SECRET = "github-secret-0123456789"
WHSEC = "whsec_" + base64.b64encode(b"standard-webhooks-key-24b").decode()
OLD_WHSEC = "whsec_" + base64.b64encode(b"an-older-standard-key-32-bytes!!").decode()
SECRETS = (SECRET, OLD_SECRET, GITHUB_SECRET, WHSEC, OLD_WHSEC)
JIRA_MAX = 2048
EXECUTIONS = "/buckets/stepfunction/collections/executions"
PAYLOAD = {"webhookEvent": "jira:issue_created", "issue": {"key": "OPS-1"}}


@pytest.fixture
def machine(workflows):
    """A state machine whose executions end at once."""
    return workflows.machine({"Type": "Pass"})


def webhook_settings(machine):
    return {
        "stepfunction.webhook.jira.state_machine": machine,
        "stepfunction.webhook.jira.scheme": "websub",
        "stepfunction.webhook.jira.secret": f"{SECRET} {OLD_SECRET}",
        "stepfunction.webhook.jira.delivery_header": "X-Atlassian-Webhook-Identifier",
        "stepfunction.webhook.jira.max_bytes": str(JIRA_MAX),
        "stepfunction.webhook.gh.state_machine": machine,
        "stepfunction.webhook.gh.scheme": "github",
        "stepfunction.webhook.gh.secret": GITHUB_SECRET,
        "stepfunction.webhook.std.state_machine": machine,
        "stepfunction.webhook.std.scheme": "standard",
        "stepfunction.webhook.std.secret": f"{OLD_WHSEC} {WHSEC}",
        "stepfunction.webhook.hub.state_machine": machine,
        "stepfunction.webhook.hub.scheme": "websub",
        "stepfunction.webhook.hub.secret": SECRET,
    }


@pytest.fixture
def hooks(app_factory, machine):
    return app_factory(**webhook_settings(machine))


def hub_signature(secret, body, method="sha256"):
    digest = hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()
    return f"{method}={digest}"


def signed_headers(name, body, delivery="delivery-1", secret=None, at=None):
    """The headers each test webhook's sender signs ``body`` with."""
    if name in ("jira", "hub"):
        headers = {"X-Hub-Signature": hub_signature(secret or SECRET, body)}
        if name == "jira" and delivery is not None:
            headers["X-Atlassian-Webhook-Identifier"] = delivery
        return headers
    if name == "gh":
        headers = {"X-Hub-Signature-256": hub_signature(secret or GITHUB_SECRET, body)}
        if delivery is not None:
            headers["X-GitHub-Delivery"] = delivery
        return headers
    at = at or datetime.datetime.now(datetime.UTC)
    signature = standardwebhooks.Webhook(secret or WHSEC).sign(delivery, at, body.decode())
    return {
        "webhook-id": delivery,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def deliver(app, name, body=None, headers=None, status=202, **signing):
    body = json.dumps(PAYLOAD).encode() if body is None else body
    if headers is None:
        headers = signed_headers(name, body, **signing)
    headers = {"Content-Type": "application/json", **headers}
    return app.post(f"/stepfunction/webhooks/{name}", body, headers=headers, status=status)


def executions_of(workflows, machine):
    return workflows.sfn.list_executions(stateMachineArn=machine)["executions"]


def stored_executions(app):
    storage = app.app.registry.storage
    return storage.list_all(resource_name="record", parent_id=EXECUTIONS)


def assert_nothing_started(app, workflows, machine):
    assert executions_of(workflows, machine) == []
    assert stored_executions(app) == []


def assert_no_secret_logged(text):
    for secret in SECRETS:
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text


# Tests of what does not depend on the storage run on one backend.
memory_only = pytest.mark.parametrize("backend", ["memory"])


# --- Accepted deliveries -------------------------------------------------------------------


@pytest.fixture
def receiver(hooks):
    """The webhooks' app, with the executions collection the admin created."""
    hooks.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    hooks.put_json(EXECUTIONS, {}, headers=ADMIN)
    return hooks


def history_of(app, record_id):
    entries = app.get("/buckets/stepfunction/history", headers=ADMIN).json["data"]
    return [e for e in entries if e["uri"] == f"{EXECUTIONS}/records/{record_id}"]


def test_each_scheme_starts_its_execution_once(receiver, workflows, machine):
    body = json.dumps(PAYLOAD).encode()
    expected_ids = {
        "jira": "jira_10001",
        "gh": "gh_72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "std": "std_msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "hub": "hub_body-" + hashlib.sha256(body).hexdigest(),
    }
    for name, record_id in expected_ids.items():
        delivery = record_id.split("_", 1)[1]
        record = deliver(receiver, name, body, delivery=delivery).json["data"]
        assert record["id"] == record_id and record["input"] == PAYLOAD
        assert record["stateMachineArn"] == machine
        assert record["startedBy"] == f"webhook:{name}"
        execution = workflows.sfn.describe_execution(executionArn=record["executionArn"])
        assert execution["name"] == record_id and json.loads(execution["input"]) == PAYLOAD
        # Sent again (a retry, a redelivery): the same record, nothing started.
        again = deliver(receiver, name, body, delivery=delivery, status=200).json["data"]
        assert again == record
        # Kinto's history says which webhook created it; the record has no ACL of its own.
        created = [e for e in history_of(receiver, record_id) if e["action"] == "create"]
        assert [e["user_id"] for e in created] == [f"webhook:{name}"]
        acl = receiver.get(f"{EXECUTIONS}/records/{record_id}", headers=ADMIN).json
        assert acl["permissions"] == {}
    started = executions_of(workflows, machine)
    assert sorted(e["name"] for e in started) == sorted(expected_ids.values())
    assert len(stored_executions(receiver)) == len(expected_ids)


@memory_only
def test_a_rotated_secret_and_a_body_at_the_limit_start(receiver, workflows, machine):
    deliver(receiver, "jira", delivery="old", secret=OLD_SECRET)
    body = json.dumps({"pad": ""}).encode()
    body = json.dumps({"pad": "x" * (JIRA_MAX - len(body))}).encode()
    assert len(body) == JIRA_MAX
    record = deliver(receiver, "jira", body, delivery="at-the-limit").json["data"]
    assert record["input"]["pad"] == "x" * (JIRA_MAX - 11)
    names = sorted(e["name"] for e in executions_of(workflows, machine))
    assert names == ["jira_at-the-limit", "jira_old"]


@memory_only
def test_a_websub_delivery_without_id_is_its_body(receiver, workflows, machine):
    first = deliver(receiver, "hub").json["data"]
    assert deliver(receiver, "hub", status=200).json["data"] == first
    other = deliver(receiver, "hub", json.dumps({"other": 1}).encode()).json["data"]
    assert other["id"] != first["id"]
    assert len(executions_of(workflows, machine)) == 2


def test_kinto_credentials_sent_along_change_nothing(receiver, workflows, machine):
    """A sender's Authorization header: the webhook still acts, and gets no rights."""
    body = json.dumps(PAYLOAD).encode()
    headers = {**signed_headers("gh", body, delivery="with-auth"), **REVIEWER}
    record = deliver(receiver, "gh", body, headers).json["data"]
    assert [e["user_id"] for e in history_of(receiver, record["id"])] == ["webhook:gh"]
    assert (
        receiver.get(f"{EXECUTIONS}/records/{record['id']}", headers=ADMIN).json["permissions"]
        == {}
    )
    receiver.get(f"{EXECUTIONS}/records/{record['id']}", headers=REVIEWER, status=403)


def test_step_functions_unavailable_is_503_and_the_retry_starts_once(
    receiver, workflows, machine, emulator
):
    emulator.inject_fault("StartExecution", count=10)  # more than boto3's retries
    response = deliver(receiver, "jira", delivery="retried", status=503)
    assert response.headers["Retry-After"]
    assert_nothing_started(receiver, workflows, machine)
    # Started, but the reply was lost: the sender's retries find that execution.
    emulator.inject_fault("StartExecution", count=10, applied=True)
    statuses = []
    while not statuses or statuses[-1] == 503:
        assert len(statuses) < 20, statuses
        response = deliver(receiver, "jira", delivery="retried", status="*")
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert stored_executions(receiver) == []
    assert statuses[0] == 503 and statuses[-1] == 202
    record = response.json["data"]
    assert [e["executionArn"] for e in executions_of(workflows, machine)] == [
        record["executionArn"]
    ]


@memory_only
def test_github_ping_starts_nothing(receiver, workflows, machine):
    body = json.dumps({"zen": "Design for failure.", "hook_id": 1}).encode()
    ping = {**signed_headers("gh", body, delivery="ping-1"), "X-GitHub-Event": "ping"}
    assert deliver(receiver, "gh", body, ping, status=200).json == {"data": None}
    deliver(receiver, "gh", body, {**ping, "X-Hub-Signature-256": "sha256=00"}, status=401)
    assert_nothing_started(receiver, workflows, machine)
    # The same body as another event starts its execution.
    deliver(receiver, "gh", body, {**ping, "X-GitHub-Event": "push"})


def test_a_record_the_webhook_did_not_start_is_409(receiver, workflows, machine):
    """Someone who may create records there took the delivery's id first: nothing starts."""
    storage = receiver.app.registry.storage
    with transaction.manager:
        squat = {"id": "jira_squatted", "stateMachineArn": machine, "startedBy": "basicauth:x"}
        storage.create(resource_name="record", parent_id=EXECUTIONS, obj=squat)
    deliver(receiver, "jira", delivery="squatted", status=409)
    assert executions_of(workflows, machine) == []


@pytest.mark.parametrize("name", ["gh", "jira"])
def test_a_signed_body_sent_again_under_another_id_starts_nothing(
    name, receiver, workflows, machine, caplog
):
    """GitHub and WebSub sign the body, not the delivery id: a captured delivery sent again
    with a new id (or a redelivery under a new id) is the delivery it repeats."""
    caplog.set_level(logging.INFO)
    body = json.dumps(PAYLOAD).encode()
    first = deliver(receiver, name, body, delivery="first").json["data"]
    replayed = deliver(receiver, name, body, delivery="replayed", status=200).json["data"]
    assert replayed == first
    assert [e["name"] for e in executions_of(workflows, machine)] == [f"{name}_first"]
    assert [r["id"] for r in stored_executions(receiver)] == [f"{name}_first"]
    assert [e["action"] for e in history_of(receiver, first["id"])] == ["create"]
    acl = receiver.get(f"{EXECUTIONS}/records/{first['id']}", headers=ADMIN).json
    assert acl["permissions"] == {}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"webhook {name}: delivery {name}_replayed repeats the signed body of" in warnings[-1]
    assert_no_secret_logged("\n".join(str(vars(r)) for r in caplog.records))
    # The first delivery again, and another body under the replayed id, are as before.
    assert deliver(receiver, name, body, delivery="first", status=200).json["data"] == first
    other = deliver(receiver, name, json.dumps({"other": 1}).encode(), delivery="replayed")
    assert other.json["data"]["id"] == f"{name}_replayed"
    # A record its admin deleted is forgotten: the body under a new id starts again.
    receiver.delete(f"{EXECUTIONS}/records/{first['id']}", headers=ADMIN)
    again = deliver(receiver, name, body, delivery="after-delete").json["data"]
    assert again["id"] == f"{name}_after-delete"
    assert deliver(receiver, name, body, delivery="later", status=200).json["data"] == again
    assert len(executions_of(workflows, machine)) == 3


# Kinto's timestamp race is PostgreSQL's: the memory backend has none.
@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("loser", ["record", "history"])
def test_a_delivery_whose_record_loses_kintos_race_is_written_at_once(
    receiver, workflows, machine, monkeypatch, loser
):
    """The execution started, then the record's write or its history entry lost Kinto's
    timestamp race: the same request writes them (GitHub sends no failed delivery again)."""
    raced = lose_race_once(monkeypatch, receiver.app.registry.storage, loser)
    record = deliver(receiver, "gh", delivery="raced").json["data"]
    monkeypatch.undo()
    assert raced and record["id"] == "gh_raced"
    assert [r["id"] for r in stored_executions(receiver)] == ["gh_raced"]
    assert [e["action"] for e in history_of(receiver, "gh_raced")] == ["create"]
    assert [e["name"] for e in executions_of(workflows, machine)] == ["gh_raced"]
    acl = receiver.get(f"{EXECUTIONS}/records/gh_raced", headers=ADMIN).json
    assert acl["permissions"] == {}


@memory_only
def test_a_standard_webhook_id_is_signed(receiver, workflows, machine):
    """Standard Webhooks sign the id: a new id under the old signature is refused, and a
    sender's distinct messages with equal bodies each start (their ids are signed)."""
    body = json.dumps(PAYLOAD).encode()
    headers = signed_headers("std", body, delivery="msg_one")
    deliver(receiver, "std", body, headers)
    deliver(receiver, "std", body, {**headers, "webhook-id": "msg_two"}, status=401)
    deliver(receiver, "std", body, delivery="msg_two")
    assert len(executions_of(workflows, machine)) == 2


# --- Refusals -------------------------------------------------------------------------------
# Refused before the storage is touched: one backend shows it.


@memory_only
def test_unknown_name_is_404(hooks, workflows, machine):
    body = json.dumps(PAYLOAD).encode()
    for name in ("nope", "JIRA", "jira_x"):
        response = deliver(hooks, name, body, signed_headers("jira", body), status=404)
        assert response.json["errno"] == 111
    assert_nothing_started(hooks, workflows, machine)


@memory_only
def test_no_webhook_configured_is_404(app):
    response = app.post_json("/stepfunction/webhooks/jira", PAYLOAD, status=404)
    assert "stepfunction.webhook" in response.json["message"]


@pytest.mark.parametrize("name", ["jira", "gh", "std"])
def test_tampered_body_wrong_secret_missing_header_are_401(
    name, hooks, workflows, machine, caplog
):
    body = json.dumps(PAYLOAD).encode()
    signed = signed_headers(name, body)
    tampered = json.dumps({**PAYLOAD, "issue": {"key": "OPS-2"}}).encode()
    wrong = {"jira": "not-the-jira-secret-at-all", "gh": SECRET, "std": OLD_WHSEC[:-4] + "AAA="}
    signature_header = next(h for h in signed if "signature" in h.lower())
    caplog.set_level(logging.INFO)
    attempts = [
        (tampered, signed),
        (body, signed_headers(name, body, secret=wrong[name])),
        (body, {k: v for k, v in signed.items() if k != signature_header}),
        (body, {k: v for k, v in signed.items() if k != signature_header} | {"X-Other": "1"}),
    ]
    for attempt_body, headers in attempts:
        response = deliver(hooks, name, attempt_body, headers, status=401)
        assert response.json["errno"] == 105
        assert "signature" not in response.headers.get("WWW-Authenticate", "")
    assert_nothing_started(hooks, workflows, machine)
    refusals = [r for r in caplog.records if r.name == "stepfunction.webhook_views"]
    assert len(refusals) == len(attempts)  # one line each
    assert all(f"webhook {name}: " in r.getMessage() for r in refusals)
    log = "\n".join(str(vars(r)) for r in caplog.records)
    assert_no_secret_logged(log)
    assert signature_of(signed[signature_header]) not in log


def signature_of(value):
    """The secret part of a signature header: after ``sha256=``, or ``v1,``."""
    return value.split(",", 1)[1] if value.startswith("v1,") else value.split("=", 1)[1]


@memory_only
def test_stale_and_future_timestamps_are_401(hooks, workflows, machine):
    for minutes in (-6, 6):
        at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
        response = deliver(hooks, "std", at=at, status=401)
        assert response.json["errno"] == 105
    assert_nothing_started(hooks, workflows, machine)


@memory_only
def test_body_over_the_limit_is_413_before_its_signature(hooks, workflows, machine):
    body = json.dumps({"pad": "x" * JIRA_MAX}).encode()
    response = deliver(hooks, "jira", body, status=413)
    assert f"{JIRA_MAX} bytes" in response.json["message"]
    deliver(hooks, "jira", body, {"X-Hub-Signature": "sha256=00"}, status=413)
    assert_nothing_started(hooks, workflows, machine)


@memory_only
def test_signed_body_that_is_not_a_json_object_is_400(app_factory, workflows, machine):
    hooks = app_factory(**{**webhook_settings(machine), "stepfunction.webhook.jira.max_bytes": ""})
    refused = [
        (b"not json", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b'{"a": NaN}', "not JSON"),
        (b'{"a": "\xff"}', "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (json.dumps({"pad": "x" * 256 * 1024}).encode(), "at most 262144 bytes"),
    ]
    for body, words in refused:
        status = 413 if "bytes" in words else 400
        assert words in deliver(hooks, "jira", body, status=status).json["message"]
    assert_nothing_started(hooks, workflows, machine)


@memory_only
def test_unsigned_garbage_is_401_not_400(hooks):
    deliver(hooks, "jira", b"not json", {"X-Atlassian-Webhook-Identifier": "1"}, status=401)


@memory_only
def test_content_type_must_be_json(hooks, workflows, machine):
    body = json.dumps(PAYLOAD).encode()
    headers = {**signed_headers("jira", body), "Content-Type": "application/x-www-form-urlencoded"}
    hooks.post("/stepfunction/webhooks/jira", body, headers=headers, status=415)
    assert_nothing_started(hooks, workflows, machine)


@memory_only
def test_no_delivery_id_is_400(hooks, workflows, machine):
    for name, header in (("jira", "X-Atlassian-Webhook-Identifier"), ("gh", "X-GitHub-Delivery")):
        response = deliver(hooks, name, delivery=None, status=400)
        assert header in response.json["message"]
    assert_nothing_started(hooks, workflows, machine)


# --- OpenAPI --------------------------------------------------------------------------------

WEBHOOK_PATH = "/stepfunction/webhooks/{name}"


@memory_only
def test_api_document_describes_the_webhook(hooks):
    post = hooks.get("/__api__").json["paths"][WEBHOOK_PATH]["post"]
    headers = {p["name"] for p in post["parameters"] if p["in"] == "header"}
    assert {"X-Hub-Signature", "X-Hub-Signature-256", "webhook-signature"} <= headers
    assert {"200", "202", "400", "401", "404", "413", "415"} <= set(post["responses"])
    assert post["consumes"] == ["application/json"]


@memory_only
def test_webhook_never_answers_5xx(hooks, workflows, machine):
    schema = schemathesis.openapi.from_wsgi("/v1/__api__", hooks.app)
    operation = schema[WEBHOOK_PATH]["POST"]

    @given(case=operation.as_strategy(), name=st.sampled_from(["jira", "gh", "std", None]))
    @settings(
        max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def post(case, name):
        if name is not None:
            case.path_parameters = {"name": name}
        for headers in (REVIEWER, {}):  # Kinto credentials or none: the same
            response = case.call(headers=headers)
            assert response.status_code < 500, response.text

    post()
    assert_nothing_started(hooks, workflows, machine)


class Endless:
    """A request body that never ends, counting what was read of it."""

    def __init__(self):
        self.read_bytes = 0

    def read(self, size=-1):
        assert size >= 0, "read to the end of an endless body"
        self.read_bytes += size
        return b"x" * size

    def readline(self, size=-1):
        return self.read(size if size >= 0 else 1)


@memory_only
def test_a_body_is_never_read_past_the_limit(hooks):
    for length in (None, str(10 * JIRA_MAX)):
        stream = Endless()
        request = webob.Request.blank("/v1/stepfunction/webhooks/jira", method="POST")
        request.environ.update({"wsgi.input": stream, "wsgi.input_terminated": True})
        request.environ.pop("CONTENT_LENGTH", None)
        if length:
            request.environ["CONTENT_LENGTH"] = length
        request.headers.update(signed_headers("jira", b"{}"))
        request.content_type = "application/json"
        response = request.get_response(hooks.app)
        assert response.status_code == 413
        assert stream.read_bytes <= (JIRA_MAX + 1 if length is None else 0)


@memory_only
def test_kinto_debug_log_of_headers_shows_no_signature(hooks, caplog):
    summary = logging.getLogger("request.summary")
    level = summary.level
    summary.setLevel(logging.DEBUG)  # Kinto then logs every request's headers and body
    caplog.set_level(logging.DEBUG)
    try:
        sent = [
            signed_headers(name, json.dumps(PAYLOAD).encode()) for name in ("jira", "gh", "std")
        ]
        for name, headers in zip(("jira", "gh", "std"), sent, strict=True):
            deliver(hooks, name, headers=headers, status="*")
            deliver(hooks, name, b"{}", headers=headers, status=401)
    finally:
        summary.setLevel(level)
    logged = [r for r in caplog.records if r.name == "request.summary"]
    assert len(logged) == 6 and all(isinstance(r.headers, dict) for r in logged)
    log = "\n".join(str(vars(r)) for r in caplog.records)
    assert "(signature)" in log
    for headers in sent:
        for name, value in headers.items():
            if "signature" in name.lower():
                assert signature_of(value) not in log
    assert_no_secret_logged(log)


# --- Over several processes -----------------------------------------------------------------


def post_delivery(url, name, body, headers, deadline=30):
    """POST a delivery as a sender does: again after a response with Retry-After."""
    give_up = time.monotonic() + deadline
    while True:
        request = urllib.request.Request(
            f"{url}/stepfunction/webhooks/{name}",
            data=body,
            headers={"Content-Type": "application/json", **headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            if "Retry-After" not in e.headers or time.monotonic() > give_up:
                return e.code, json.loads(e.read())
        time.sleep(0.1)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_20_racing_deliveries_over_two_processes_start_one_execution(
    receiver, workflows, machine, emulator, tmp_path
):
    settings = app_settings("postgresql", emulator, **webhook_settings(machine))
    body = json.dumps(PAYLOAD).encode()
    with kinto_processes(settings, tmp_path, 2) as servers:
        for name in ("jira", "gh", "std"):
            headers = signed_headers(name, body, delivery="race")
            calls = [
                (post_delivery, (servers.urls[i % 2], name, body, headers)) for i in range(20)
            ]
            results = all_at_once(calls)
            statuses = collections.Counter(status for status, _ in results)
            assert statuses == {202: 1, 200: 19}, results
            assert len({json.dumps(r["data"], sort_keys=True) for _, r in results}) == 1
        # One signed body replayed under 20 delivery ids at once, where ids are not signed.
        replayed = json.dumps({**PAYLOAD, "replayed": True}).encode()
        for name in ("jira", "gh"):
            calls = [
                (
                    post_delivery,
                    (servers.urls[i % 2], name, replayed, signed_headers(name, replayed, f"r{i}")),
                )
                for i in range(20)
            ]
            results = all_at_once(calls)
            statuses = collections.Counter(status for status, _ in results)
            assert statuses == {202: 1, 200: 19}, results
            assert len({json.dumps(r["data"], sort_keys=True) for _, r in results}) == 1
        # A bad signature, on each process: refused, one line each, no secret in the logs.
        for url in servers.urls:
            forged = {**signed_headers("gh", body, delivery="forged"), "X-Hub-Signature-256": ""}
            assert post_delivery(url, "gh", body, forged)[0] == 401
        # A body without Content-Length (chunked), over the limit: 413 all the same.
        chunks = iter([b'{"pad": "', b"x" * JIRA_MAX, b'"}'])
        status, _ = post_delivery(servers.urls[0], "jira", chunks, signed_headers("jira", b"{}"))
        assert status == 413
        log = servers.log_text()
    names = {e["name"] for e in executions_of(workflows, machine)}
    raced = {"gh_race", "jira_race", "std_race"}
    assert raced <= names and len(names - raced) == 2
    assert sorted(n.split("_")[0] for n in names - raced) == ["gh", "jira"]
    assert len(stored_executions(receiver)) == 5
    assert log.count("refused (401)") == 2
    assert_no_secret_logged(log)
    for name in ("jira", "gh", "std"):
        for header, value in signed_headers(name, body, delivery="race").items():
            if "signature" in header.lower():
                assert signature_of(value) not in log


# --- The README's example -------------------------------------------------------------------

README = Path(__file__).parent.parent / "README.rst"


def readme_block(containing):
    """The README's code block that holds ``containing``, unindented."""
    blocks = re.findall(r"\.\. code-block:: \w+\n\n((?:    .*\n|\n)+)", README.read_text())
    block = next(b for b in blocks if containing in b)
    return textwrap.dedent(block)


@memory_only
def test_the_readme_curl_example_works(app_factory, workflows, machine):
    ini = readme_block("stepfunction.webhook.jira.")
    settings = dict(line.split(" = ", 1) for line in ini.splitlines() if " = " in line)
    settings["stepfunction.webhook.jira.state_machine"] = machine
    app = app_factory(**settings)
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(EXECUTIONS, {}, headers=ADMIN)
    example = readme_block("openssl dgst")
    server = StopableWSGIServer.create(app.app, host="127.0.0.1")
    assert server.wait()
    try:
        url = server.application_url.rstrip("/") + "/v1"
        script = example.replace("http://127.0.0.1:8888/v1", url)
        run = [subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)]
        run.append(
            subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
        )
        tampered = script.replace('--data-binary "$BODY"', '--data-binary "$BODY "')
        run.append(
            subprocess.run(["bash", "-c", tampered], capture_output=True, text=True, timeout=30)
        )
    finally:
        server.shutdown()
    statuses = [r.stdout.split("\n", 1)[0].split()[1] for r in run]
    assert statuses == ["202", "200", "401"], [r.stdout + r.stderr for r in run]
    assert '"id":"jira_delivery-1"' in run[0].stdout.replace(" ", "")
    assert [e["name"] for e in executions_of(workflows, machine)] == ["jira_delivery-1"]


def test_a_bad_webhook_setting_stops_start_up(emulator, machine):
    bad = {**webhook_settings(machine), "stepfunction.webhook.gh.secret": f"{GITHUB_SECRET} tiny1"}
    with pytest.raises(ConfigurationError, match="stepfunction.webhook.gh.secret") as caught:
        make_app(app_settings("memory", emulator, **bad))
    assert GITHUB_SECRET not in str(caught.value) and "tiny1" not in str(caught.value)
