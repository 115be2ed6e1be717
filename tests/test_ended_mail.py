"""Issue 13 for the mail of an execution that ends badly (``stepfunction.mail_ended``): every
``notify`` address gets it exactly once, through the outbox (outages, two workers, addresses
refused for good, a worker stopped mid-send), and ``notify`` is checked when written."""

# ruff: noqa: F811 (the fixtures imported below are the tests' arguments)

import json
import signal
import threading
import time

import pytest

from stepfunction import records, transactions
from stepfunction.notices import NEVER
from stepfunction.status_events import Status, from_description
from stepfunction.worker.status import apply
from tests.conftest import ADMIN, REVIEWER, _Bare, mail_settings, user_id, wait_for
from tests.test_executions import (  # noqa: F401 (fixtures)
    acl_of,
    app,
    collection,
    executions_of,
    machine,
    start,
    url,
)
from tests.test_mail_delivery import INVALID, Server, smtp  # noqa: F401 (a fixture)
from tests.test_worker import worker_processes, write_ini  # noqa: F401 (a fixture)


EXECUTIONS = "/buckets/stepfunction/collections/executions"
MACHINE = "arn:aws:states:us-west-2:123456789012:stateMachine:Review"
OPS, DEV, GONE = "ops@example.com", "dev@example.com", "gone@example.com"
ENDED = {"stepfunction.mail_ended": "true", "stepfunction.reconcile_seconds": "0"}


def execution_app(app_factory, smtp):
    app = app_factory(**mail_settings(smtp, **ENDED))
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(EXECUTIONS, {}, headers=ADMIN)
    return app


def running(app, name, notify):
    """An execution record as the plugin writes it when it starts the execution."""
    body = {
        "data": {
            "stateMachineArn": MACHINE,
            "input": {},
            "executionArn": f"{MACHINE.replace('stateMachine', 'execution')}:{name}",
            "status": "RUNNING",
            "startDate": "2026-12-01T00:00:00.000+00:00",
            "notify": notify,
        },
        "permissions": {"write": [user_id(app, REVIEWER)]},
    }
    transactions.commit(
        app.app.registry,
        lambda request: records.write_record(
            request, "stepfunction", "executions", name, body, create=True
        ),
    )


def end(registry, name, state="FAILED"):
    """The end of the execution ``name`` applied as the worker applies a status event."""
    arn = f"{MACHINE.replace('stateMachine', 'execution')}:{name}"
    status = Status(
        arn, name, state, "2026-12-01T00:00:00.000Z", "2026-12-01T00:01:00.000Z", error="Boom"
    )
    return apply(registry, status)


def notice(app, name):
    return records.get_notice(_Bare(app.app.registry), f"{EXECUTIONS}/records/{name}")


def settled(app, name, timeout=20):
    wait_for(lambda: (notice(app, name) or {}).get("due") == NEVER, timeout, "every mail sent")


def record(app, name):
    return app.get(f"{EXECUTIONS}/records/{name}", headers=ADMIN).json["data"]


SUBJECT = "Execution {} ended FAILED"


def test_an_smtp_outage_then_recovery_delivers_the_mail_once(app_factory, smtp, start_worker):
    app = execution_app(app_factory, smtp)
    running(app, "e1", [OPS, DEV, "Ops@Example.com"])
    smtp.reply = "451 4.3.0 Try again later"
    start_worker(app)
    assert end(app.app.registry, "e1") == ("updated", 0)
    wait_for(lambda: smtp.attempts.get(OPS, 0) >= 3, 20, "sends refused for a while")
    assert smtp.messages == []
    smtp.reply = None  # the mail server is back
    settled(app, "e1")
    for address in (OPS, DEV):
        assert smtp.subjects(address) == [SUBJECT.format("e1")], address
    assert len(smtp.messages) == 2
    assert end(app.app.registry, "e1") == ("unchanged", 0)  # a duplicate event: nothing
    assert notice(app, "e1")["due"] == NEVER and len(smtp.messages) == 2
    assert "unreached" not in record(app, "e1")


def test_a_successful_end_or_no_notify_mails_nobody(app_factory, smtp, start_worker):
    app = execution_app(app_factory, smtp)
    running(app, "ok", [OPS])
    running(app, "silent", [])
    assert end(app.app.registry, "ok", "SUCCEEDED") == ("updated", 0)
    assert end(app.app.registry, "silent") == ("updated", 0)
    assert notice(app, "ok") is None and notice(app, "silent") is None


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_workers_applying_the_same_end_deliver_once(app_factory, smtp, start_worker):
    second = app_factory(**mail_settings(smtp, **ENDED))  # the same database, its own pool
    first = execution_app(app_factory, smtp)  # (an app made empties the database first)
    notify = [f"n{i}@example.com" for i in range(6)]
    running(first, "e2", notify)
    smtp.delay = 0.2
    for each in (first, second):
        start_worker(each)
    barrier = threading.Barrier(2)
    outcomes = []

    def apply_end(app):
        barrier.wait()
        outcomes.append(end(app.app.registry, "e2")[0])

    threads = [threading.Thread(target=apply_end, args=(app,)) for app in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["unchanged", "updated"]
    settled(first, "e2", timeout=30)
    for address in notify:
        assert smtp.subjects(address) == [SUBJECT.format("e2")], address


def test_an_address_refused_for_good_ends_after_bounded_tries_on_the_record(
    app_factory, smtp, start_worker
):
    app = execution_app(app_factory, smtp)
    running(app, "e3", [GONE, OPS])
    acl = acl_of_admin(app, "e3")
    smtp.refused.add(GONE)
    start_worker(app)
    end(app.app.registry, "e3")
    settled(app, "e3")
    assert smtp.attempts[GONE] == 3  # PERMANENT_TRIES, then given up
    assert smtp.subjects(OPS) == [SUBJECT.format("e3")]
    for headers in (ADMIN, REVIEWER):
        data = app.get(f"{EXECUTIONS}/records/e3", headers=headers).json["data"]
        assert data["unreached"] == [
            {"address": GONE, "reason": "refused by the mail server (550)"}
        ]
        assert data["status"] == "FAILED"
    assert acl_of_admin(app, "e3") == acl
    # Plugin-written only: neither the author nor a writer writes it away.
    for headers in (ADMIN, REVIEWER):
        refused = app.patch_json(
            f"{EXECUTIONS}/records/e3", {"data": {"unreached": []}}, headers=headers, status=403
        )
        assert refused.json["details"][0]["name"] == "unreached"
    assert len(record(app, "e3")["unreached"]) == 1


def acl_of_admin(app, name):
    acl = app.get(f"{EXECUTIONS}/records/{name}", headers=ADMIN).json["permissions"]
    return {perm: sorted(principals) for perm, principals in acl.items()}


@pytest.mark.parametrize("backend", ["postgresql"])  # a worker process shares the database
def test_sigterm_mid_send_never_mails_a_served_address_again(
    app_factory,
    smtp,
    emulator,
    tmp_path,
    worker_processes,
):
    app = execution_app(app_factory, smtp)
    ini = write_ini(tmp_path / "worker.ini", emulator, stop_seconds=3, **_unprefixed(ENDED))
    head = "[app:main]\nuse = egg:kinto\n"
    mail = "".join(f"{k} = {v}\n" for k, v in mail_settings(smtp).items())
    ini.write_text(ini.read_text().replace(head, head + mail))
    notify = [f"r{i}@example.com" for i in range(8)]
    running(app, "e4", notify)
    smtp.delay = 1.0
    end(app.app.registry, "e4")

    first = worker_processes(ini)
    first.wait_started()
    wait_for(lambda: len(smtp.messages) >= 2, 30, "two mails accepted")
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(20) == 0, first.output()
    assert len(smtp.messages) < len(notify)  # stopped mid-pass

    restarted = time.monotonic()
    worker_processes(ini).wait_started()
    settled(app, "e4", timeout=30)
    assert time.monotonic() - restarted < 25  # promptly: not after a long lease
    for address in notify:
        assert smtp.subjects(address) == [SUBJECT.format("e4")], address


def _unprefixed(settings):
    return {k.removeprefix("stepfunction."): v for k, v in settings.items()}


# --- notify is checked when written ------------------------------------------------------------

TOO_MANY = [f"p{i}@example.com" for i in range(21)]


@pytest.mark.parametrize("notify", [*INVALID, TOO_MANY, 42, [OPS, None]])
def test_a_notify_that_cant_be_mailed_is_refused_and_starts_nothing(
    app,
    collection,
    machine,
    workflows,
    notify,
):
    def refused(response):
        error = response.json
        assert error["errno"] == 107 and error["details"][0]["name"] == "notify", error
        assert error["code"] == 400 and error["error"] == "Bad Request"

    refused(start(app, machine, expect=400, notify=notify))
    refused(start(app, machine, record_id="r0", expect=400, notify=[OPS, notify]))
    assert executions_of(workflows, machine) == []
    app.get(url("r0"), headers=ADMIN, status=404)

    created = start(app, machine, record_id="r1", notify=[OPS]).json["data"]
    acl = acl_of(app, "r1")
    headers = {"headers": ADMIN, "status": 400}
    writes = [
        lambda: app.patch_json(url("r1"), {"data": {"notify": notify}}, **headers),
        lambda: app.put_json(url("r1"), {"data": {**created, "notify": notify}}, **headers),
        lambda: app.patch(
            url("r1"),
            json.dumps([{"op": "add", "path": "/data/notify", "value": notify}]),
            headers={**ADMIN, "Content-Type": "application/json-patch+json"},
            status=400,
        ),
    ]
    for write in writes:
        refused(write())
    assert record_of(app, "r1")["notify"] == [OPS]
    assert acl_of(app, "r1") == acl
    assert len(executions_of(workflows, machine)) == 1


def record_of(app, record_id):
    return app.get(url(record_id), headers=ADMIN).json["data"]


def test_a_valid_notify_is_stored_and_may_change(
    app,
    collection,
    machine,
):
    notify = [f"p{i}@example.com" for i in range(20)]
    start(app, machine, record_id="r1", notify=notify)
    app.patch_json(url("r1"), {"data": {"notify": "ops@bücher.example"}}, headers=ADMIN)
    assert record_of(app, "r1")["notify"] == "ops@bücher.example"
    app.patch_json(url("r1"), {"data": {"notify": None}}, headers=ADMIN)


def test_an_execution_stopped_through_its_record_mails_notify_once(
    app_factory, smtp, machine, workflows, start_worker
):
    """The stop endpoint's write ends the record too: its mail goes the same way, once (the
    status event that follows it changes nothing)."""
    from tests.test_executions import AUTHOR, stop_url

    app = app_factory(**mail_settings(smtp, **ENDED, **{"stepfunction.state_machines": machine}))
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    create = {"record:create": [user_id(app, AUTHOR)]}
    app.put_json(EXECUTIONS, {"permissions": create}, headers=ADMIN)
    started = start(app, machine, record_id="s1", notify=[OPS, DEV]).json["data"]
    start_worker(app)
    app.post_json(stop_url("s1"), {"error": "Cancelled"}, headers=AUTHOR)
    assert workflows.status(started["executionArn"]) == "ABORTED"
    settled(app, "s1")
    for address in (OPS, DEV):
        assert smtp.subjects(address) == ["Execution s1 ended ABORTED"], address
    # Reconciliation (or the status event) then finds the record up to date: no second mail.
    described = workflows.sfn.describe_execution(executionArn=started["executionArn"])
    assert apply(app.app.registry, from_description(described))[0] == "unchanged"
    assert notice(app, "s1")["due"] == NEVER and len(smtp.messages) == 2


def test_batch_writes_of_notify_are_checked_too(app, collection, machine, workflows):
    def batch(method, record_id, data):
        request = {"method": method, "path": url(record_id), "body": {"data": data}}
        body = {"requests": [request]}
        return app.post_json("/batch", body, headers=ADMIN).json["responses"][0]

    bad = "a%b@example.com"
    response = batch("PUT", "b", {"stateMachineArn": machine, "notify": bad})
    assert response["status"] == 400 and response["body"]["details"][0]["name"] == "notify"
    assert executions_of(workflows, machine) == []
    assert batch("PUT", "b", {"stateMachineArn": machine, "notify": OPS})["status"] == 201
    response = batch("PATCH", "b", {"notify": [OPS, bad]})
    assert response["status"] == 400 and response["body"]["details"][0]["name"] == "notify"
    assert record_of(app, "b")["notify"] == OPS
