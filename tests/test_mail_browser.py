"""The mail's HTML part in Chromium, as a mail client shows it, at 1280 and 375 px:
screenshots, no horizontal overflow, axe-core with no violation, buttons reached by keyboard."""

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from stepfunction.testing.browser import launch_chromium
from tests.conftest import ADMIN, STEPS, post_step
from tests.test_mail_html import ALICE, BOB, HOSTILE


AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SHOTS = Path("/tmp/mails")
WIDTHS = (1280, 375)

pytestmark = pytest.mark.parametrize("backend", ["memory"])  # mails, not storage


def html_of(message):
    return message.get_body(preferencelist=("html",)).get_content()


def check(page, name):
    SHOTS.mkdir(exist_ok=True)
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


def test_every_mail_reads_well_at_both_widths(mail_app, mailbox, callback):
    token, execution = callback()
    long_word = "x" * 300  # an unbroken value must wrap, not widen the phone's screen
    post_step(
        mail_app,
        {
            "subject": f"Pay invoice 42 {HOSTILE} {long_word}",
            "requester": "carol@example.com",
            "reviewer": [ALICE],
            "taskToken": token,
            "executionArn": execution,
            "deadline": time.time() + 5 * 3600,
            "input": {
                "amount": 1200,
                "vendor": f"ACME {HOSTILE}",
                "note": long_word,
                long_word: 1,
            },
        },
    )
    (with_links,) = mailbox.wait(1, ALICE)
    # Bob can sign in, and the step's input is not an object: the summary, and the dashboard.
    other, _ = callback()
    data = {"subject": "Sign", "reviewer": [BOB], "taskToken": other, "input": [long_word, 2]}
    body = {"data": data, "permissions": {"write": [f"account:{BOB}"]}}
    mail_app.post_json(f"{STEPS}/records", body, headers=ADMIN)
    (with_dashboard,) = mailbox.wait(1, BOB)

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        # Mail clients run no script; axe is added to the page for the check alone.
        page = browser.new_context(bypass_csp=True, java_script_enabled=True).new_page()
        page.set_content(html_of(with_links))
        expect(page.locator("h1")).to_contain_text("Pay invoice 42 <script>")
        assert page.title().startswith("Pay invoice 42")
        check(page, "step-mail")
        # Keyboard alone: Tab reaches Approve, then Reject, each named as it acts.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Approve"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Reject"

        page.set_content(html_of(with_dashboard))
        expect(page.get_by_role("link", name="the dashboard")).to_be_visible()
        check(page, "dashboard-mail")
        browser.close()
