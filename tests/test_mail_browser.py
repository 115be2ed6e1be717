"""The mail's HTML part in Chromium, as a mail client shows it, checked as the link pages are
(1280 and 375 px: screenshots, no horizontal overflow, axe-core), buttons reached by keyboard."""

import time

import pytest
from playwright.sync_api import expect, sync_playwright

from stepfunction.testing.browser import launch_chromium
from tests.conftest import ADMIN, STEPS, post_step
from tests.test_link_pages_browser import check
from tests.test_mail_html import ALICE, BOB, HOSTILE


pytestmark = pytest.mark.parametrize("backend", ["memory"])  # mails, not storage


def html_of(message):
    return message.get_body(preferencelist=("html",)).get_content()


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
        check(page, "mail-step")
        # Keyboard alone: Tab reaches Approve, then Reject, each named as it acts.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Approve"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Reject"

        page.set_content(html_of(with_dashboard))
        expect(page.get_by_role("link", name="the dashboard")).to_be_visible()
        check(page, "mail-dashboard")
        browser.close()
