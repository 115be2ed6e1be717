"""The mail's two parts, on the real SMTP server: plain text beside HTML with buttons."""

import email
import email.policy
import time
from html.parser import HTMLParser

import pytest

from stepfunction import when
from stepfunction.links import Link, Signer
from stepfunction.mails import compose, input_rows, signs_in
from stepfunction.settings import Settings
from stepfunction.testing.mailbox import links_of, text_of
from tests.conftest import ADMIN, REVIEWER, STEPS, permissions_of, post_step


ALICE, BOB = "alice@example.com", "bob@example.com"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
# A requester is a principal or an address (``decisions``): hostile, without spaces.
ASKER = HOSTILE.replace(" ", "/")


class Page(HTMLParser):
    """What a mail client shows of the HTML part: its text, its links, its tags."""

    def __init__(self, markup):
        super().__init__()
        self.text, self.links, self.tags, self._href = [], [], [], None
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "a":
            self._href = dict(attrs)["href"]
            self.links.append([self._href, ""])

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None

    def handle_data(self, data):
        self.text.append(data)
        if self._href is not None:
            self.links[-1][1] += data

    @property
    def shown(self):
        return " ".join(" ".join(self.text).split())


def parts_of(message):
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    markup = message.get_body(preferencelist=("html",))
    assert plain.get_content_type() == "text/plain" and markup.get_content_type() == "text/html"
    text = plain.get_content().replace("\r\n", "\n")  # written with CRLF line ends
    return text, Page(markup.get_content())


def test_the_html_part_has_buttons_the_facts_and_escaped_input(mail_app, mailbox, callback):
    token, execution = callback()
    deadline = time.time() + 2 * 3600 + 60
    data = {
        "subject": f"Pay {HOSTILE}",
        "requester": f"account:carol{ASKER}",
        "reviewer": [ALICE],
        "taskToken": token,
        "executionArn": execution,
        "deadline": deadline,
        "input": {"amount": 1200, "vendor": HOSTILE, "lines": [{"sku": "A-1"}, 2]},
    }
    post_step(mail_app, data)
    (message,) = mailbox.wait(1, ALICE)
    text, page = parts_of(message)

    # Both parts carry the same links; the HTML shows them as buttons, never as text.
    links = links_of(message)
    assert set(links) == {"Approve", "Reject"}  # Alice can't sign in: no dashboard link
    assert [[links["Approve"], "Approve"], [links["Reject"], "Reject"]] == page.links
    assert "/stepfunction/links/" not in page.shown and "http" not in page.shown

    # Hostile text is text: no tag of it reaches the HTML, and it reads as written.
    assert "script" not in page.tags and "img" not in page.tags
    assert f"Pay {HOSTILE}" in page.shown
    assert f"Asked by account:carol{ASKER}" in page.shown
    assert f"vendor {HOSTILE}" in page.shown

    # The input is read as fields, not as JSON on one line.
    assert "amount 1200" in page.shown
    assert 'lines [{"sku": "A-1"}, 2]' in page.shown
    assert "    amount: 1200\n" in text and f"    vendor: {HOSTILE}\n" in text

    # The deadline and the links' expiry, in words and as a time (links end at the deadline).
    absolute = when.absolute(deadline)
    for separator, shown in ((" ", page.shown), (": ", text)):
        assert f"Deadline{separator}in 2 hours ({absolute})" in shown
        assert f"Links expire{separator}in 2 hours ({absolute})" in shown
    assert token not in message.as_string()


def test_the_dashboard_link_goes_only_to_reviewers_who_can_sign_in(mail_app, mailbox, callback):
    token, _ = callback()
    body = {
        "data": {"subject": "Sign", "reviewer": [ALICE, BOB], "taskToken": token},
        # Alice has an account (her user id is her address); Bob is reached by mail alone.
        "permissions": {"write": [f"account:{ALICE}"]},
    }
    mail_app.post_json(f"{STEPS}/records", body, headers=ADMIN)
    (alice,) = mailbox.wait(1, ALICE)
    (bob,) = mailbox.wait(1, BOB)
    assert set(links_of(alice)) == {"Approve", "Reject", "dashboard"}
    assert set(links_of(bob)) == {"Approve", "Reject"}
    _, alice_page = parts_of(alice)
    _, bob_page = parts_of(bob)
    assert [text for _, text in alice_page.links] == ["Approve", "Reject", "the dashboard"]
    assert "dashboard" not in bob_page.shown and "dashboard" not in text_of(bob)


def test_signing_in_is_known_by_user_id_never_by_a_links_principal():
    assert signs_in("Alice@Example.com", {"account:alice@example.com"})
    assert signs_in("alice@example.com", {"google:alice@example.com"})
    assert not signs_in("alice@example.com", {"link:alice@example.com"})
    assert not signs_in("alice@example.com", {"basicauth:6eea01", "system.Authenticated"})
    assert not signs_in("alice@example.com", {"account:mallory@example.com"})


def test_a_mail_is_written_with_crlf_in_both_parts():
    settings = Settings(
        public_url="https://k.example.com/v1/", mail_sender="s@example.com", link_secret="s" * 40
    )
    record = {"id": "r1", "subject": "Pay", "input": {"note": "two\nlines"}}
    uri = "/buckets/b/collections/c/records/r1"
    message = compose(settings, Signer("s" * 40), uri, record, ALICE, "n1", 0)
    raw = message.to_message().as_bytes()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    text, page = parts_of(parsed)
    assert "    note: two\n          lines\n" in text and "note two lines" in page.shown
    approve = Signer("s" * 40).read(links_of(parsed)["Approve"].rsplit("/", 1)[1])
    assert isinstance(approve, Link) and approve.answer == "SUCCEED"


def test_inputs_read_as_fields_cut_when_large():
    assert input_rows({"input": [1, 2]}) is None
    rows = input_rows({"input": {f"k{i}": "x" * 1000 for i in range(30)}})
    assert len(rows) == 21 and rows[-1] == ("…", "10 more")
    assert all(len(text) <= 300 for _, text in rows)


@pytest.mark.parametrize(
    "seconds, words",
    [
        (20, "in less than a minute"),
        (60 * 45, "in 45 minutes"),
        (3600 * 3 + 100, "in 3 hours"),
        (3600 * 47, "in 47 hours"),
        (86400 * 3, "in 3 days"),
        (-3600, "1 hour ago"),
    ],
)
def test_times_in_words(seconds, words):
    assert when.relative(1_000_000 + seconds, 1_000_000) == words


def test_absolute_times_are_utc():
    assert when.absolute(0) == "Thu 01 Jan 1970, 00:00 UTC"
    assert when.iso_seconds("1970-01-01T00:01:00.000+00:00") == 60
    assert when.iso_seconds("yesterday") is None


def test_only_the_author_says_who_asks(app, collection, callback):
    token, _ = callback()
    record = post_step(app, {"subject": "Pay", "requester": "account:carol", "taskToken": token})
    url = f"{STEPS}/records/{record['id']}"
    refused = app.patch_json(
        url, {"data": {"requester": "account:ceo"}}, headers=REVIEWER, status=403
    ).json
    assert "requester" in refused["message"]
    assert app.get(url, headers=ADMIN).json["data"]["requester"] == "account:carol"
    acl = permissions_of(app, record["id"])
    app.patch_json(url, {"data": {"requester": "account:carol.smith"}}, headers=ADMIN)
    assert permissions_of(app, record["id"]) == acl


def test_a_reviewer_who_answers_through_a_group_gets_the_dashboard_link(
    mail_app, mailbox, callback
):
    group = "/buckets/stepfunction/groups/reviewers"
    mail_app.put_json(group, {"data": {"members": [f"account:{ALICE}"]}}, headers=ADMIN)
    token, _ = callback()
    body = {
        "data": {"subject": "Sign", "reviewer": [ALICE, BOB], "taskToken": token},
        "permissions": {"write": [group]},
    }
    mail_app.post_json(f"{STEPS}/records", body, headers=ADMIN)
    assert "dashboard" in links_of(mailbox.wait(1, ALICE)[0])
    assert "dashboard" not in links_of(mailbox.wait(1, BOB)[0])
