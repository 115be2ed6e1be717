"""Escalation: a step unanswered too long gets more reviewers, mailed once, by any workers."""

import pytest
import transaction

from stepfunction import records
from stepfunction.escalation import ESCALATED
from tests.conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    STRANGER,
    answer_url,
    mail_settings,
    notice_of,
    permissions_of,
    user_id,
    wait_for,
)


ALICE, CAROL = "alice@example.com", "carol@example.com"


@pytest.fixture
def two_apps(app_factory, mailbox, backend):
    """Two apps on one storage (two processes' worth on PostgreSQL; one registry twice on
    memory, whose storage lives in one app), each with a worker: ``(app, [registries])``."""

    def make(**settings):
        app = app_factory(**mail_settings(mailbox), **settings)
        other = app if backend == "memory" else app_factory(**mail_settings(mailbox), **settings)
        readers = [user_id(app, h) for h in (REVIEWER, STRANGER)]
        app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
        app.put_json(STEPS, {"permissions": {"read": readers}}, headers=ADMIN)
        return app, other

    return make


def post(app, token, **fields):
    body = {"data": {"taskToken": token, "reviewer": [ALICE], **fields}}
    body["permissions"] = {"write": [user_id(app, REVIEWER)]}
    return app.post_json(f"{STEPS}/records", body, headers=ADMIN).json["data"]


def record_of(app, record_id):
    return app.get(f"{STEPS}/records/{record_id}", headers=ADMIN).json["data"]


def test_escalates_once_even_with_two_workers(
    two_apps, callback, start_worker, mailbox, workflows
):
    app, other = two_apps()
    token, execution = callback(timeout=30)
    stranger = user_id(app, STRANGER)
    record = post(app, token, escalateAfter=0.5, escalateTo=[CAROL, stranger])
    before = permissions_of(app, record["id"])
    for each in (app, other, app):  # three workers, two of them on one registry
        start_worker(each).escalation_poll = 0.05
    mailbox.wait(1, ALICE)

    escalated = wait_for(lambda: record_of(app, record["id"]).get(ESCALATED), 20, "escalation")
    assert escalated["to"] == [CAROL, stranger]
    stored = record_of(app, record["id"])
    assert (
        stored["reviewer"] == [ALICE, CAROL] and stored.get("status", "UNANSWERED") == "UNANSWERED"
    )
    after = permissions_of(app, record["id"])
    assert after["write"] == sorted([*before["write"], stranger])
    assert {k: v for k, v in after.items() if k != "write"} == {
        k: v for k, v in before.items() if k != "write"
    }
    mailbox.wait(1, CAROL)

    def settled():
        notice = notice_of(app, record["id"])
        state = notice["recipients"].get(CAROL, {})
        return state.get("n") == 1 and notice["lease"] == 0

    wait_for(settled, 20, "Carol's mail recorded")
    assert len(mailbox.to(CAROL)) == 1 and len(mailbox.to(ALICE)) == 1
    history = app.get("/buckets/stepfunction/history", headers=ADMIN).json["data"]
    ats = {
        h["target"]["data"][ESCALATED]["at"] for h in history if ESCALATED in h["target"]["data"]
    }
    assert ats == {escalated["at"]}
    # The principal escalated to answers.
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=STRANGER)
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_settings_give_the_defaults_and_an_answered_step_never_escalates(
    two_apps, callback, start_worker, mailbox
):
    app, _ = two_apps(**{"stepfunction.escalate_after": "0.3", "stepfunction.escalate_to": CAROL})
    token, _ = callback(timeout=30)
    answered = post(app, token, escalateAfter=0.3)
    app.post_json(answer_url(answered["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    token, _ = callback(timeout=30)
    late = post(app, token)
    request = type("R", (), {"registry": app.app.registry})()
    uri = f"{STEPS}/records/{answered['id']}"
    assert records.get_escalation(request, uri) is None
    start_worker(app).escalation_poll = 0.05
    wait_for(lambda: record_of(app, late["id"]).get(ESCALATED), 20, "escalation")
    assert ESCALATED not in record_of(app, answered["id"])
    assert mailbox.wait(1, CAROL) and len(mailbox.to(CAROL)) == 1


ESCALATE_TO_CAROL = {"stepfunction.escalate_after": "0.3", "stepfunction.escalate_to": CAROL}


def escalation_of(app, record_id):
    request = type("R", (), {"registry": app.app.registry})()
    return records.get_escalation(request, f"{STEPS}/records/{record_id}")


def test_a_step_an_earlier_version_wrote_escalates_once_a_worker_starts(
    two_apps, callback, start_worker, mailbox
):
    app, other = two_apps(**ESCALATE_TO_CAROL)
    token, _ = callback(timeout=30)
    older = post(app, token)
    token, _ = callback(timeout=30)
    answered = post(app, token)
    app.post_json(answer_url(answered["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    request = type("R", (), {"registry": app.app.registry})()
    with transaction.manager:  # as an earlier version left it: nothing scheduled
        records.drop_escalation(request, f"{STEPS}/records/{older['id']}")
    before = permissions_of(app, older["id"])
    for each in (app, other):  # two workers starting at once (two processes' on PostgreSQL)
        start_worker(each).escalation_poll = 0.05
    escalated = wait_for(lambda: record_of(app, older["id"]).get(ESCALATED), 20, "escalation")
    assert escalated["to"] == [CAROL]
    assert permissions_of(app, older["id"]) == before  # an address: reviewer, not the ACL
    assert mailbox.wait(1, CAROL) and len(mailbox.to(CAROL)) == 1
    assert escalation_of(app, answered["id"]) is None
    assert ESCALATED not in record_of(app, answered["id"])


@pytest.mark.parametrize("backend", ["postgresql"])  # two apps, one storage
def test_steps_pending_before_escalation_was_set_escalate_from_their_last_write(
    two_apps, app_factory, callback, start_worker, mailbox
):
    later = app_factory(**mail_settings(mailbox), **ESCALATE_TO_CAROL)  # its settings, later
    app, _ = two_apps()
    token, _ = callback(timeout=30)
    older = post(app, token)
    assert escalation_of(app, older["id"]) is None  # nothing to escalate to, then
    start_worker(later).escalation_poll = 0.05
    escalated = wait_for(lambda: record_of(app, older["id"]).get(ESCALATED), 20, "escalation")
    assert escalated["to"] == [CAROL] and record_of(app, older["id"])["reviewer"] == [ALICE, CAROL]
    assert mailbox.wait(1, CAROL) and len(mailbox.to(CAROL)) == 1


def test_reviewers_do_not_change_the_escalation(two_apps, callback):
    app, _ = two_apps()
    token, _ = callback(timeout=30)
    record = post(app, token, escalateAfter=60, escalateTo=CAROL)
    for field, value in (("escalateAfter", 1), ("escalateTo", "account:me")):
        refused = app.patch_json(
            f"{STEPS}/records/{record['id']}",
            {"data": {field: value}},
            headers=REVIEWER,
            status=403,
        )
        assert refused.json["details"]["name"] == field
    app.patch_json(
        f"{STEPS}/records/{record['id']}",
        {"data": {"escalateAfter": 0}},
        headers=ADMIN,
        status=400,
    )
