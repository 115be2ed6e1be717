"""Every page of a mailed link in Chromium, at 1280 and 375 px: screenshots, no horizontal
overflow, axe-core with no violation, and keyboard-only use."""

import contextlib
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from webtest.http import StopableWSGIServer

from stepfunction.links import Link
from stepfunction.testing.browser import launch_chromium
from stepfunction.testing.mailbox import free_port, links_of
from tests.conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    answer_url,
    mail_settings,
    notice_of,
    post_step,
    user_id,
)


ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SHOTS = Path("/tmp/link-pages")
WIDTHS = (1280, 375)
HOSTILE = "<script>alert(1)</script>"

pytestmark = pytest.mark.parametrize("backend", ["memory"])  # pages, not storage


@contextlib.contextmanager
def served(app_factory, mailbox, start_worker):
    port = free_port()
    public_url = f"http://127.0.0.1:{port}/v1/"
    app = app_factory(**mail_settings(mailbox, public_url=public_url))
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    permissions = {"read": [user_id(app, REVIEWER)]}
    app.put_json(STEPS, {"permissions": permissions}, headers=ADMIN)
    server = StopableWSGIServer.create(app.app, host="127.0.0.1", port=port)
    assert server.wait()
    start_worker(app)
    try:
        yield app, public_url
    finally:
        server.shutdown()


def mailed_step(app, mailbox, data):
    mailbox.clear()
    record = post_step(app, {"reviewer": [ALICE, BOB], **data})
    return record, {a: links_of(mailbox.wait(1, a)[-1]) for a in (ALICE, BOB)}


def signed(app, public_url, record_id, answer="SUCCEED", expires=None, recipient=ALICE):
    """A link of the step as its mail would carry (or one past its expiry)."""
    registry = app.app.registry
    nonce = notice_of(app, record_id)["nonce"]
    expires = int(expires or time.time() + 3600)
    link = Link("stepfunction", "manual_steps", record_id, recipient, answer, nonce, expires)
    return f"{public_url}stepfunction/links/{registry.stepfunction_signer.sign(link)}"


def check(page, name, status=None):
    """Screenshots at both widths, no horizontal overflow, no axe violation."""
    SHOTS.mkdir(exist_ok=True)
    expect(page.locator("h1")).to_be_visible()
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width} px is {overflow} px too wide"
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(
            "async () => (await axe.run(document)).violations"
            ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
        )
        assert violations == [], f"{name} at {width} px: {violations}"
    assert page.title() == page.locator("h1").inner_text()


def test_every_link_page_reads_well_at_both_widths(
    app_factory, mailbox, callback, workflows, start_worker
):
    with served(app_factory, mailbox, start_worker) as (app, public_url):
        token, execution = callback({"amount": 12})
        data = {
            "subject": f"Pay invoice 42 {HOSTILE}",
            "requester": "carol@example.com",
            "taskToken": token,
            "executionArn": execution,
            "deadline": time.time() + 5 * 3600,
            "input": {"amount": 1200, "vendor": f"ACME {HOSTILE}", "lines": [{"sku": "A-1"}]},
        }
        record, mails = mailed_step(app, mailbox, data)
        other_token, other_execution = callback()
        elsewhere, elsewhere_mails = mailed_step(
            app, mailbox, {"subject": "Sign the contract", "taskToken": other_token}
        )
        app.post_json(answer_url(elsewhere["id"]), {"answer": "FAIL"}, headers=REVIEWER)
        activity = post_step(
            app,
            {"subject": "Ship", "reviewer": CAROL, "activityArn": workflows.activity()},
        )
        removed, _ = mailed_step(app, mailbox, {"subject": "Removed", "taskToken": token})
        app.patch_json(
            f"{STEPS}/records/{removed['id']}", {"data": {"reviewer": BOB}}, headers=ADMIN
        )
        gone, _ = mailed_step(app, mailbox, {"subject": "Deleted", "taskToken": token})
        gone_link = signed(app, public_url, gone["id"])
        app.delete(f"{STEPS}/records/{gone['id']}", headers=ADMIN)

        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            # axe is added to each page: the pages' own policy allows no script at all.
            page = browser.new_context(bypass_csp=True).new_page()

            page.goto(mails[ALICE]["Reject"])
            expect(page.locator("h1")).to_have_text("Reject this step?")
            shown = page.locator("main").inner_text()
            assert HOSTILE in shown and "carol@example.com" in shown
            assert "Deadline" in shown and "in 5 hours (" in shown
            assert "This link expires" in shown
            check(page, "confirm-reject")
            page.get_by_role("link", name="Approve instead").click()
            expect(page.locator("h1")).to_have_text("Approve this step?")
            check(page, "confirm-approve")
            page.get_by_role("link", name="Reject instead").click()
            expect(page.locator("h1")).to_have_text("Reject this step?")
            assert workflows.status(execution) == "RUNNING"

            page.get_by_role("button", name="Reject").click()
            expect(page.locator("h1")).to_have_text("Rejected. Thank you")
            check(page, "done")
            assert workflows.wait_done(execution)["status"] == "FAILED"

            page.goto(mails[ALICE]["Reject"])
            expect(page.locator("h1")).to_have_text("This link was already used")
            check(page, "used")
            page.goto(mails[BOB]["Approve"])
            expect(page.locator("h1")).to_have_text("Already answered elsewhere")
            expect(page.locator("main")).to_contain_text(f"rejected by {ALICE} with a mailed")
            page.goto(elsewhere_mails[ALICE]["Approve"])
            expect(page.locator("h1")).to_have_text("Already answered elsewhere")
            expect(page.locator("main")).to_contain_text("rejected by reviewer less than")
            check(page, "elsewhere")
            assert workflows.wait_done(other_execution)["status"] == "FAILED"

            pages = [
                (
                    signed(app, public_url, activity["id"], recipient=CAROL),
                    "activity-409",
                    "cannot be answered",
                ),
                (
                    signed(app, public_url, record["id"], expires=time.time() - 7200),
                    "expired",
                    "This link has expired",
                ),
                (gone_link, "deleted", "This step no longer exists"),
                (
                    public_url + "stepfunction/links/not-a-link",
                    "invalid",
                    "This link is not valid",
                ),
                (signed(app, public_url, removed["id"]), "removed", "This link no longer answers"),
            ]
            for url, name, title in pages:
                page.goto(url)
                expect(page.locator("h1")).to_contain_text(title)
                check(page, name)

            # A form that did not come from the page (its cookie gone): its own error page.
            fresh, fresh_mails = mailed_step(
                app, mailbox, {"subject": "Fresh", "taskToken": callback()[0]}
            )
            page.goto(fresh_mails[ALICE]["Approve"])
            page.context.clear_cookies()
            page.get_by_role("button", name="Approve").click()
            expect(page.locator("h1")).to_have_text("Please confirm from the link's page")
            check(page, "forged-403")
            # A malformed form: a page, never JSON.
            page.goto(fresh_mails[ALICE]["Reject"])
            page.route("**/stepfunction/links/*", lambda r: r.continue_(post_data="csrf=a&csrf=b"))
            page.get_by_role("button", name="Reject").click()
            expect(page.locator("h1")).to_have_text("This form is malformed")
            check(page, "malformed-400")
            browser.close()


def test_a_reviewer_answers_with_the_keyboard_alone(
    app_factory, mailbox, callback, workflows, start_worker
):
    with served(app_factory, mailbox, start_worker) as (app, _):
        token, execution = callback()
        data = {"subject": "Pay", "taskToken": token, "executionArn": execution}
        _, mails = mailed_step(app, mailbox, data)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page()
            page.goto(mails[ALICE]["Approve"])
            page.keyboard.press("Tab")
            expect(page.get_by_label("Comment (optional)")).to_be_focused()
            page.keyboard.press("Tab")
            expect(page.get_by_role("button", name="Approve")).to_be_focused()
            page.keyboard.press("Tab")
            expect(page.get_by_role("link", name="Reject instead")).to_be_focused()
            page.keyboard.press("Enter")
            expect(page.locator("h1")).to_have_text("Reject this step?")
            page.keyboard.press("Tab")
            expect(page.get_by_label("Reason (optional, sent to the workflow)")).to_be_focused()
            page.keyboard.type("Wrong amount")
            page.keyboard.press("Tab")
            expect(page.get_by_role("button", name="Reject")).to_be_focused()
            page.keyboard.press("Enter")
            expect(page.locator("h1")).to_have_text("Rejected. Thank you")
            browser.close()
        described = workflows.wait_done(execution)
        assert (described["status"], described["cause"]) == ("FAILED", "Wrong amount")
