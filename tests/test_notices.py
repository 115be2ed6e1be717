"""What a step's mail says and whom it goes to, and how its links are signed: pure functions."""

import email
import email.policy
import time

import pytest

from stepfunction import links
from stepfunction.mails import compose
from stepfunction.notices import (
    MAX_RECIPIENTS,
    deadline_of,
    is_reviewer,
    reviewers_of,
    summary_of,
)
from stepfunction.settings import Settings
from stepfunction.testing.mailbox import links_of


SECRET = "s" * 40
URI = "/buckets/stepfunction/collections/manual_steps/records/r1"
SETTINGS = Settings(
    public_url="https://kinto.example.com/v1/", mail_sender="steps@example.com", link_secret=SECRET
)
LINK = links.Link("stepfunction", "manual_steps", "r1", "a@example.com", "SUCCEED", "n1", 2**40)


def test_a_link_reads_back_as_signed():
    signer = links.Signer(SECRET)
    assert signer.read(signer.sign(LINK)) == LINK


@pytest.mark.parametrize(
    "token",
    ["", "x" * 5000, "abc", "eyJhIjoxfQ.bad", None, 42],
)
def test_malformed_tokens_are_invalid(token):
    with pytest.raises(links.InvalidLink):
        links.Signer(SECRET).read(token)


def test_a_link_of_another_secret_or_salt_is_invalid():
    token = links.Signer("t" * 40).sign(LINK)
    with pytest.raises(links.InvalidLink):
        links.Signer(SECRET).read(token)


def test_every_changed_character_invalidates_a_link():
    signer = links.Signer(SECRET)
    token = signer.sign(LINK)
    for i in range(0, len(token), 7):
        changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        with pytest.raises(links.InvalidLink):
            signer.read(changed)


def test_a_signed_link_with_another_answer_is_invalid():
    signer = links.Signer(SECRET)
    with pytest.raises(links.InvalidLink):
        signer.read(signer.sign(LINK._replace(answer="MAYBE")))


def test_an_expired_link_is_told_apart():
    signer = links.Signer(SECRET)
    token = signer.sign(LINK._replace(expires=1000))
    with pytest.raises(links.ExpiredLink) as raised:
        signer.read(token, now=1000)
    assert raised.value.link.record_id == "r1"
    assert signer.read(token, now=999).expires == 1000


def test_expiry_never_passes_the_deadline():
    assert links.expiry(100, 50) == 150
    assert links.expiry(100, 50, deadline=120) == 120
    assert links.expiry(100, 50, deadline=500) == 150


@pytest.mark.parametrize(
    "value,expected",
    [
        ("a@example.com", ["a@example.com"]),
        (
            [" a@example.com ", "A@EXAMPLE.COM", "b@example.org"],
            ["a@example.com", "b@example.org"],
        ),
        (["not an address", "x@y", "a@example.com\r\nBcc: v@example.com", 3, None], []),
        ("a@example.com, b@example.com", []),
        ({"a": "a@example.com"}, []),
        (None, []),
    ],
)
def test_reviewers_are_valid_distinct_addresses(value, expected):
    assert reviewers_of({"reviewer": value}) == expected


def test_reviewers_are_capped():
    many = [f"r{i}@example.com" for i in range(100)]
    assert len(reviewers_of({"reviewer": many})) == MAX_RECIPIENTS
    assert is_reviewer({"reviewer": many}, "R1@example.com")
    assert not is_reviewer({"reviewer": many}, "r99@example.com")


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2026-11-23T10:00:00Z", 1795428000.0),
        ("2026-11-23T11:00:00+01:00", 1795428000.0),
        ("2026-11-23T10:00:00", 1795428000.0),
        (1795428000, 1795428000.0),
        ("tomorrow", None),
        (True, None),
        (None, None),
    ],
)
def test_deadline_of(value, expected):
    assert deadline_of({"deadline": value}) == expected


def test_the_summary_of_a_large_input_is_cut():
    text = summary_of({"input": {"blob": "x" * 10_000}})
    assert len(text) < 1000 and text.endswith("…")


def test_a_mail_names_the_step_and_carries_signed_links_until_the_deadline():
    now = time.time()
    record = {
        "id": "r1",
        "subject": "Pay\ninvoice  42",
        "input": {"amount": 12},
        "stateMachineArn": "arn:aws:states:us-west-2:123456789012:stateMachine:Payments",
        "executionArn": "arn:aws:states:us-west-2:123456789012:execution:Payments:run-7",
        "deadline": now + 3600,
    }
    signer = links.Signer(SECRET)
    message = compose(
        SETTINGS, signer, URI, record, "a@example.com", "n1", 0, now=now, signs_in=True
    )
    mail = message.to_message()
    assert mail["Subject"] == "Your review is needed: Pay invoice 42"
    assert mail["To"] == "a@example.com" and mail["Auto-Submitted"] == "auto-generated"
    raw = mail.as_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    found = links_of(email.message_from_bytes(raw, policy=email.policy.default))
    approve = signer.read(found["Approve"].rsplit("/", 1)[1])
    reject = signer.read(found["Reject"].rsplit("/", 1)[1])
    assert (approve.answer, reject.answer) == ("SUCCEED", "FAIL")
    assert approve.recipient == "a@example.com" and approve.nonce == "n1"
    assert approve.expires == int(now + 3600)
    assert found["dashboard"] == (
        "https://kinto.example.com/v1/stepfunction/dashboard/"
        "?bucket=stepfunction&collection=manual_steps#/steps/r1"
    )
    text = message.body
    assert "State machine: Payments" in text and "Execution: Payments:run-7" in text


def test_a_reminder_says_so_and_without_a_secret_there_are_no_links():
    record = {"id": "r1"}
    message = compose(SETTINGS, None, URI, record, "a@example.com", "n1", 2)
    assert message.subject == "Reminder (2): Your review is needed: r1"
    assert "/links/" not in message.body and "dashboard" in message.body
