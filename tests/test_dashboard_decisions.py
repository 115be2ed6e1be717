"""The dashboard's side of decisions by several people (issue 17): "1 of 2 approvals", who
voted, a comment with either answer, delegating through a dialog, escalation in words."""

import json

import pytest
from kinto.core.testing import get_user_headers
from playwright.sync_api import expect, sync_playwright

from stepfunction.testing.browser import launch_chromium
from tests.conftest import ADMIN, REVIEWER, STEPS, add_records, permissions_of, user_id
from tests.test_dashboard import dd, serve, sign_in
from tests.test_dashboard_people import check, open_page


SECOND = get_user_headers("second")
pytestmark = pytest.mark.parametrize("backend", ["memory"])  # the endpoints' tests do both


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def server(app):
    with serve(app) as url:
        yield url


@pytest.fixture
def steps(app):
    """The steps collection, readable by the reviewer and the second reviewer."""
    readers = [user_id(app, h) for h in (REVIEWER, SECOND)]
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {"permissions": {"read": readers}}, headers=ADMIN)
    return STEPS


def post_decision(app, token, subject, reviewers=(REVIEWER, SECOND), **fields):
    body = {"data": {"taskToken": token, "subject": subject, **fields}}
    body["permissions"] = {"write": [user_id(app, h) for h in reviewers]}
    return app.post_json(f"{STEPS}/records", body, headers=ADMIN).json["data"]["id"]


def detail(browser, server, record_id, user, width=1280):
    page = open_page(browser, f"{server}/v1/stepfunction/dashboard/#/steps/{record_id}", width)
    sign_in(page, user)
    expect(page.locator("#d-subject")).to_be_focused()
    return page


def test_a_quorum_of_two_through_the_dialog(browser, server, app, steps, callback, workflows):
    token, execution = callback(timeout=60)
    record_id = post_decision(app, token, "Pay invoice 7", quorum=2)
    acl = permissions_of(app, record_id)

    page = open_page(browser, f"{server}/v1/stepfunction/dashboard/")
    sign_in(page, "reviewer")
    row = page.locator(f"tr[data-id='{record_id}']")
    expect(row.locator(".progress")).to_have_text("0 of 2 approvals")
    page.goto(page.url.split("#")[0] + f"#/steps/{record_id}")
    expect(dd(page, "Approvals")).to_have_text("0 of 2 approvals")
    page.locator("#d-actions").get_by_role("button", name="Accept").click()
    dialog = page.get_by_role("dialog")
    comment = dialog.get_by_label("Comment")
    comment.fill("Amount <b>checked</b>")
    dialog.get_by_role("button", name="Accept").click()
    expect(page.locator("#message")).to_have_text(
        "Your approval was recorded: 1 of 2 approvals so far."
    )
    expect(page.locator("#message")).to_have_class("ok")  # not an error
    expect(dd(page, "Approvals")).to_have_text("1 of 2 approvals")  # refreshed
    expect(dd(page, "Votes")).to_contain_text("you approved on ")
    expect(dd(page, "Votes").locator("q")).to_have_text("Amount <b>checked</b>")  # as text
    expect(page.locator("#d-status")).to_have_text("Approved by you, waiting for others")
    assert workflows.status(execution) == "RUNNING"
    vote = app.get(f"{STEPS}/records/{record_id}", headers=ADMIN).json["data"]["votes"][0]
    assert (vote["by"], vote["comment"]) == (user_id(app, REVIEWER), "Amount <b>checked</b>")
    page.goto(page.url.split("#")[0] + "#/inbox")
    expect(row.locator(".progress")).to_have_text("1 of 2 approvals")
    page.context.close()
    assert page.errors == []

    # The second reviewer sees who approved, by name, on a phone; his approval resumes the
    # execution.
    page = detail(browser, server, record_id, "second", width=375)
    expect(dd(page, "Votes")).to_contain_text("reviewer approved on ")
    expect(dd(page, "Votes")).not_to_contain_text("basicauth")
    check(page, "decisions-step-votes-phone")
    page.locator("#d-actions").get_by_role("button", name="Accept").click()
    page.get_by_role("dialog").get_by_label("Comment").fill("Fine by me")
    page.get_by_role("dialog").get_by_role("button", name="Accept").click()
    expect(page.locator("#message")).to_have_text("Accepted “Pay invoice 7”.")
    described = workflows.wait_done(execution)
    assert described["status"] == "SUCCEEDED"
    comments = [a.get("comment") for a in json.loads(described["output"])["approvals"]]
    assert comments == ["Amount <b>checked</b>", "Fine by me"]
    expect(dd(page, "Votes").locator("li")).to_have_count(2)
    assert permissions_of(app, record_id) == acl
    page.context.close()
    assert page.errors == []


def test_rejecting_with_a_reason_and_a_comment(browser, server, app, steps, callback, workflows):
    token, execution = callback(timeout=60)
    record_id = post_decision(app, token, "Ship 3.1", quorum=2)
    page = detail(browser, server, record_id, "reviewer")
    page.locator("#d-actions").get_by_role("button", name="Reject").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Reason").fill("Tests fail")
    dialog.get_by_label("Comment").fill("See the CI run")
    dialog.get_by_role("button", name="Reject").click()
    expect(page.locator("#message")).to_have_text("Rejected “Ship 3.1”.")
    described = workflows.wait_done(execution)
    assert (described["status"], described["cause"]) == ("FAILED", "Tests fail")
    vote = app.get(f"{STEPS}/records/{record_id}", headers=ADMIN).json["data"]["votes"][0]
    assert (vote["answer"], vote["comment"]) == ("FAIL", "See the CI run")
    page.context.close()
    assert page.errors == []


def test_delegating_through_the_dialog(browser, server, app, steps, callback, workflows):
    token, execution = callback(timeout=60)
    record_id = post_decision(app, token, "Approve leave", reviewers=(REVIEWER,), delegation=True)
    before = permissions_of(app, record_id)
    reviewer, second = user_id(app, REVIEWER), user_id(app, SECOND)
    page = detail(browser, server, record_id, "reviewer")
    delegate = page.get_by_role("button", name="Delegate Approve leave")
    delegate.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("To")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(delegate).to_be_focused()

    # Refusals are said in the dialog, in words; nothing changes.
    delegate.click()
    dialog.get_by_label("To").fill(reviewer)
    dialog.get_by_role("button", name="Delegate").click()
    expect(dialog.locator("#delegate-problem")).to_have_text(
        "Not allowed: You can't delegate a step to yourself."
    )
    dialog.get_by_label("To").fill("system.Everyone")
    dialog.get_by_role("button", name="Delegate").click()
    expect(dialog.locator("#delegate-problem")).to_contain_text("Not valid: to must be")
    assert permissions_of(app, record_id) == before

    dialog.get_by_label("To").fill(second)
    dialog.get_by_label("Comment").fill("On holiday")
    dialog.get_by_role("button", name="Delegate").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#message")).to_have_text(f"Delegated “Approve leave” to {second}.")
    expected = sorted(set(before["write"]) - {reviewer} | {second})
    assert permissions_of(app, record_id) == {**before, "write": expected}
    expect(dd(page, "Delegated")).to_contain_text("you delegated to a Basic auth user on ")
    expect(dd(page, "Delegated").locator("q")).to_have_text("On holiday")
    expect(page.locator("#d-actions").get_by_role("button")).to_have_count(0)  # handed on
    assert workflows.status(execution) == "RUNNING"
    page.context.close()
    assert page.errors == []


def test_no_delegate_button_unless_the_step_allows_it(browser, server, app, steps):
    record_id = post_decision(app, "(stored)", "Plain", reviewers=(REVIEWER,))
    page = detail(browser, server, record_id, "reviewer")
    expect(page.locator("#d-actions").get_by_role("button", name="Accept")).to_be_visible()
    expect(page.get_by_role("button", name="Delegate Plain")).to_have_count(0)
    page.context.close()


def test_escalation_votes_and_delegations_in_the_detail(browser, server, app, steps):
    reviewer, second = user_id(app, REVIEWER), user_id(app, SECOND)
    data = {
        "id": "escalated",
        "subject": "Renew the certificate of a-very-long-host-name.example.com " * 2,
        "taskToken": "(stored)",
        "quorum": 3,
        "delegation": True,
        "votes": [
            {
                "by": second,
                "answer": "SUCCEED",
                "at": "2026-01-02T10:00:00Z",
                "comment": "x" * 300,
            },
            {"by": second, "answer": "SUCCEED", "at": "2026-01-02T11:00:00Z"},  # counted once
        ],
        "delegations": [
            {"from": "account:ann", "to": reviewer, "at": "2026-01-01T09:00:00Z", "comment": "Go"}
        ],
        "escalated": {"at": "2026-01-03T08:00:00Z", "to": ["ops@example.com", "account:boss"]},
    }
    add_records(app, [(data, {"write": [reviewer]})])
    app.get(f"{STEPS}/stepfunction/inbox", headers=SECOND)  # his name, recorded
    page = detail(browser, server, "escalated", "reviewer", width=375)
    expect(dd(page, "Approvals")).to_have_text("1 of 3 approvals")
    expect(dd(page, "Votes").locator("li").first).to_contain_text("second approved on ")
    expect(dd(page, "Votes").locator("li")).to_have_count(2)
    expect(dd(page, "Delegated")).to_contain_text("ann delegated to you on ")
    at = page.evaluate("d => DATE.format(new Date(d))", data["escalated"]["at"])
    expect(dd(page, "Escalated")).to_have_text(f"Escalated to ops@example.com, boss at {at}")
    expect(page.get_by_role("button", name="Delegate")).to_be_visible()
    check(page, "decisions-step-escalated-phone")
    page.get_by_role("button", name="Delegate").click()
    check(page, "decisions-delegate-phone")
    page.context.close()
    assert page.errors == []


def test_the_listing_names_who_voted_delegated_or_was_escalated_to(app, steps):
    """``steps[id]["names"]``: the principals of votes, delegations and escalation as names
    (addresses are shown as they are: not in it); hashes never."""
    reviewer, second = user_id(app, REVIEWER), user_id(app, SECOND)
    data = {
        "id": "named",
        "subject": "Named",
        "votes": [{"by": second, "answer": "SUCCEED"}, {"by": 7}, "junk"],
        "delegations": [{"from": "account:ann", "to": reviewer}, {"to": "bob@example.com"}],
        "escalated": {"at": "2026-01-03T08:00:00Z", "to": ["ops@example.com", "account:boss"]},
    }
    add_records(app, [(data, {"write": [reviewer]}), ({"id": "plain"}, {"write": [reviewer]})])
    listed = app.get(f"{STEPS}/stepfunction/steps", headers=REVIEWER).json["steps"]
    assert listed["named"]["names"] == {
        second: "a Basic auth user",  # not signed in yet: no name recorded
        "account:ann": "ann",
        reviewer: "you",
        "account:boss": "boss",
    }
    assert listed["plain"]["names"] == {}
    app.get(f"{STEPS}/stepfunction/inbox", headers=SECOND)  # his name, recorded
    listed = app.get(f"{STEPS}/stepfunction/steps?id=named", headers=REVIEWER).json["steps"]
    assert listed["named"]["names"][second] == "second"
    inbox = app.get(f"{STEPS}/stepfunction/inbox", headers=SECOND).json["steps"]
    assert inbox == {}  # not his to answer: nothing named
