"""Mails to a step's reviewers, on a real SMTP server: one per reviewer, reminders, outages."""

import pytest

from stepfunction.notices import NEVER
from stepfunction.testing.mailbox import links_of, text_of
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
def mail_app(app_factory, mailbox, collection):
    def make(**extra):
        app = app_factory(**mail_settings(mailbox, **extra))
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
        "reviewer": [ALICE, BOB, "not an address", ALICE.upper()],
        "taskToken": token,
        "input": {"amount": 12},
    }
    record = post_step(app, data)

    for address in (ALICE, BOB):
        (message,) = mailbox.wait(1, address)
        assert message["From"] == SENDER
        assert message["Subject"] == "Your review is needed: Pay invoice 42"
        links = links_of(message)
        assert set(links) == {"Approve", "Reject", "dashboard"}
        assert links["Approve"].startswith("http://localhost/v1/stepfunction/links/")
        assert links["Approve"] != links["Reject"]
        text = text_of(message)
        assert token not in text and LINK_SECRET not in text
        assert '"amount": 12' in text
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
