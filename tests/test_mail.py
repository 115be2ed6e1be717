"""Mails to a step's reviewers, on a real SMTP server: one per reviewer, reminders, outages."""

import pytest

from stepfunction.notices import NEVER
from stepfunction.testing.mailbox import links_of, text_of
from tests import failing_listener
from tests.conftest import (
    ADMIN,
    LINK_SECRET,
    REVIEWER,
    SENDER,
    STEPS,
    answer_url,
    mail_settings,
    notice_of,
    post_step,
    stored_token,
    wait_for,
)


ALICE, BOB = "alice@example.com", "bob@example.com"


@pytest.fixture
def mail_app(app_factory, mailbox):
    def make(**extra):
        app = app_factory(**mail_settings(mailbox, **extra))
        app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
        app.put_json(STEPS, {}, headers=ADMIN)
        return app

    return make


def settled(app, record_id):
    """Wait until the step's notice is due no more (every mail of it is sent)."""
    return wait_for(
        lambda: (notice_of(app, record_id) or {}).get("due") == NEVER, message="mails sent"
    )


def test_a_pending_step_mails_each_reviewer_once_with_both_links(
    app_factory, mailbox, callback, start_worker
):
    app = app_factory(**mail_settings(mailbox))
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {}, headers=ADMIN)
    token, _ = callback({"amount": 12})
    start_worker(app)
    data = {
        "subject": "Pay invoice 42",
        "reviewer": [ALICE, BOB, ALICE.upper()],
        "taskToken": token,
        "input": {"amount": 12},
    }
    record = post_step(app, data)

    for address in (ALICE, BOB):
        (message,) = mailbox.wait(1, address)
        assert message["From"] == SENDER
        assert message["Subject"] == "Your review is needed: Pay invoice 42"
        links = links_of(message)
        assert set(links) == {"Approve", "Reject"}
        assert links["Approve"].startswith("http://localhost/v1/stepfunction/links/")
        assert links["Approve"] != links["Reject"]
        text = text_of(message)
        assert token not in text and LINK_SECRET not in text
        assert "    amount: 12" in text
    settled(app, record["id"])
    assert len(mailbox.messages) == 2
    assert stored_token(app, record["id"]) == token


def test_no_mail_without_mail_settings(app, collection, callback, mailbox, start_worker):
    token, _ = callback()
    start_worker(app)
    record = post_step(app, {"reviewer": ALICE, "taskToken": token})
    assert notice_of(app, record["id"]) is None
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    assert mailbox.messages == []


def test_the_workers_records_are_mailed_too(app_factory, mailbox, workflows, start_worker):
    activity = workflows.activity()
    app = app_factory(**mail_settings(mailbox, **{"stepfunction.activities": activity}))
    execution = workflows.start(
        workflows.activity_machine(activity),
        {"subject": "Sign off add-on 7", "reviewer": ALICE, "addon": 7},
    )
    start_worker(app)
    (message,) = mailbox.wait(1, ALICE)
    assert message["Subject"] == "Your review is needed: Sign off add-on 7"
    assert set(links_of(message)) == {"Approve", "Reject"}
    assert workflows.status(execution) == "RUNNING"


def test_reminders_go_every_remind_every_at_most_remind_max_times(
    mail_app, mailbox, callback, start_worker
):
    app = mail_app(**{"stepfunction.remind_every": "0.2", "stepfunction.remind_max": "2"})
    token, _ = callback()
    start_worker(app)
    record = post_step(app, {"subject": "Pay", "reviewer": [ALICE, BOB], "taskToken": token})
    settled(app, record["id"])
    for address in (ALICE, BOB):
        subjects = [m["Subject"] for m in mailbox.to(address)]
        assert subjects == [
            "Your review is needed: Pay",
            "Reminder (1): Your review is needed: Pay",
            "Reminder (2): Your review is needed: Pay",
        ]
        assert all(set(links_of(m)) == {"Approve", "Reject"} for m in mailbox.to(address))


def test_reminders_stop_once_the_step_is_answered(mail_app, mailbox, callback, start_worker):
    app = mail_app(**{"stepfunction.remind_every": "0.2", "stepfunction.remind_max": "50"})
    token, _ = callback()
    start_worker(app)
    record = post_step(app, {"reviewer": ALICE, "taskToken": token})
    mailbox.wait(2, ALICE)
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    notice = settled(app, record["id"]) and notice_of(app, record["id"])
    assert notice["closed"] is True
    count = len(mailbox.to(ALICE))
    # Another step's first mail and reminder: the outbox made its passes since the answer.
    other_token, _ = callback()
    post_step(app, {"reviewer": BOB, "taskToken": other_token})
    mailbox.wait(2, BOB)
    assert len(mailbox.to(ALICE)) <= count + 1  # at most the one in flight at the answer


def test_two_workers_send_each_mail_once(app_factory, mailbox, callback, start_worker, backend):
    settings = mail_settings(mailbox, **{"stepfunction.remind_every": "0.2"})
    settings["stepfunction.remind_max"] = "3"
    first = app_factory(**settings)
    # Two workers: on PostgreSQL two servers sharing the database, in memory two on one app.
    second = app_factory(**settings) if backend == "postgresql" else first
    first.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    first.put_json(STEPS, {}, headers=ADMIN)
    for app in (first, second, first, second):
        start_worker(app)
    steps = []
    for i in range(5):
        token, _ = callback()
        steps.append(post_step(first, {"subject": f"s{i}", "reviewer": ALICE, "taskToken": token}))
    for step in steps:
        settled(first, step["id"])
    subjects = sorted(m["Subject"] for m in mailbox.to(ALICE))
    expected = []
    for i in range(5):
        expected.append(f"Your review is needed: s{i}")
        expected += [f"Reminder ({n}): Your review is needed: s{i}" for n in (1, 2, 3)]
    assert subjects == sorted(expected)


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("attempt", range(4))
def test_workers_starting_while_another_sends_mail_once(
    app_factory, mailbox, callback, start_worker, attempt
):
    """A worker indexes the open notices as it starts: it must not write back a notice it
    read before another worker claimed and mailed it (2 duplicate mails in 8 runs, before)."""
    settings = mail_settings(mailbox)
    first, second = app_factory(**settings), app_factory(**settings)
    first.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    first.put_json(STEPS, {}, headers=ADMIN)
    token, _ = callback()
    step = post_step(first, {"reviewer": ALICE, "taskToken": token})
    for app in (first, second, first):
        start_worker(app)
    settled(first, step["id"])
    assert len(mailbox.to(ALICE)) == 1


def test_a_refusing_smtp_server_blocks_nothing_and_loses_nothing(
    mail_app, mailbox, callback, start_worker, workflows
):
    app = mail_app()
    start_worker(app)
    mailbox.refuse = True
    token, execution = callback()
    answered = post_step(app, {"reviewer": ALICE, "taskToken": token})
    later_token, _ = callback()
    later = post_step(app, {"reviewer": BOB, "taskToken": later_token})
    wait_for(
        lambda: (
            (notice_of(app, later["id"]) or {}).get("recipients", {}).get(BOB, {}).get("tries", 0)
            >= 2
        ),
        message="refused sends, retried",
    )
    assert mailbox.refused >= 2

    # The step works while mail does not.
    app.post_json(answer_url(answered["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"

    mailbox.refuse = False
    (message,) = mailbox.wait(1, BOB)
    settled(app, later["id"])
    assert mailbox.to(ALICE) == []  # answered before any mail got through: none is sent
    assert message["Subject"] == f"Your review is needed: {later['id']}"


def test_hostile_step_fields_cannot_forge_mail_headers(mail_app, mailbox, callback, start_worker):
    app = mail_app()
    start_worker(app)
    token, _ = callback()
    subject = "Pay\r\nBcc: victim@example.com\r\n\r\nfake body"
    for hostile in ("eve@example.com\r\nBcc: victim@example.com", "x@y.z, victim@example.com"):
        body = {"data": {"reviewer": [ALICE, hostile], "taskToken": token}}
        refused = app.post_json(f"{STEPS}/records", body, headers=ADMIN, status=400).json
        assert refused["details"][0]["name"] == "reviewer"  # refused when written
    reviewers = [ALICE] + [f"r{i}@example.com" for i in range(40)]
    record = post_step(app, {"subject": subject, "reviewer": reviewers, "taskToken": token})
    settled(app, record["id"])
    (message,) = mailbox.to(ALICE)
    assert message["Subject"] == "Your review is needed: Pay Bcc: victim@example.com fake body"
    assert message["Bcc"] is None
    recipients = [m["To"] for m in mailbox.messages]
    assert not any("victim" in r or "eve" in r for r in recipients)
    assert len(recipients) == 20  # MAX_RECIPIENTS: no mass mailing from one record


@pytest.mark.parametrize("backend", ["postgresql"])  # the memory backend can't roll back
def test_a_write_refused_by_a_listener_mails_nobody(
    app_factory, mailbox, callback, start_worker, monkeypatch
):
    includes = "stepfunction kinto.plugins.history tests.failing_listener"
    app = app_factory(**mail_settings(mailbox, includes=includes))
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {}, headers=ADMIN)
    start_worker(app)
    token, _ = callback()
    monkeypatch.setitem(failing_listener.refusals, "left", 1)
    body = {"data": {"reviewer": ALICE, "taskToken": token}}
    app.put_json(f"{STEPS}/records/refused", body, headers=ADMIN, status=500)
    assert notice_of(app, "refused") is None

    later, _ = callback()
    post_step(app, {"reviewer": BOB, "taskToken": later})
    mailbox.wait(1, BOB)  # the outbox made a pass after the refused write
    assert mailbox.to(ALICE) == []
