"""The dashboard with a reviewer's eyes: confirmations, keyboard only, deadlines, names never
hashes, buttons only for who may use them, phones (375 px) and desktops (1280 px), axe-core.

Screenshots go to ``SHOTS`` (one per view, state and width): every one is checked for
horizontal overflow and by axe-core (WCAG 2.2 AA rules, tests/vendor/axe.min.js).
"""

import base64
import datetime
import json
import pathlib

import pytest
from playwright.sync_api import expect, sync_playwright

from stepfunction.testing.browser import launch_chromium
from tests import fake_openid
from tests.conftest import ADMIN, REVIEWER, STEPS, STRANGER, add_records, post_step, user_id
from tests.test_dashboard import dd, serve, sign_in


SHOTS = pathlib.Path("/tmp/dashboard-shots")
AXE = (pathlib.Path(__file__).parent / "vendor" / "axe.min.js").read_text()
WIDTHS = {"desktop": 1280, "phone": 375}
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
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


def open_page(browser, url, width=1280):
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(error))
    page.goto(url)
    return page


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server + "/v1/stepfunction/dashboard/")
    yield page
    page.context.close()
    assert page.errors == []


def check(page, name):
    """Screenshot, no horizontal overflow, no axe-core violation (WCAG 2.2 A and AA)."""
    SHOTS.mkdir(exist_ok=True)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{name}: the page is {width[0]} px wide in {width[1]} px"
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE)  # through the DevTools protocol: the page's CSP still holds
    options = json.dumps({"runOnly": {"type": "tag", "values": WCAG}})
    result = page.evaluate(f"axe.run(document, {options})")
    violations = [(v["id"], [n["target"] for n in v["nodes"]]) for v in result["violations"]]
    assert violations == [], f"{name}: {violations}"


CONTRAST = """selector => {
  const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => {
    const [r, g, b] = rgb(c).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const style = getComputedStyle(document.querySelector(selector));
  const [a, b] = [lum(style.borderTopColor), lum(style.backgroundColor)].sort().reverse();
  return (a + 0.05) / (b + 0.05);
}"""


def contrast(page, selector):
    """The contrast ratio of a control's border with its background."""
    return page.evaluate(CONTRAST, selector)


def iso(delta):
    moment = datetime.datetime.now(datetime.UTC) + delta
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


HOUR = datetime.timedelta(hours=1)
MINUTE = datetime.timedelta(minutes=1)


@pytest.fixture
def callbacks(app, collection, callback):
    """Steps waiting on callback tokens, writable by the reviewer: ``[(id, execution)]``."""

    def make(*subjects, **data):
        made = []
        for i, subject in enumerate(subjects):
            token, execution = callback(timeout=60)
            record = {"subject": subject, "taskToken": token, **data}
            made.append((post_step(app, record, record_id=f"s{i}")["id"], execution))
        return made

    return make


def test_accepting_asks_first_and_escape_sends_nothing(page, callbacks, workflows):
    [(record_id, execution)] = callbacks("Pay invoice 41")
    sign_in(page, "reviewer")
    row = page.locator(f"tr[data-id={record_id}]")
    accept = row.get_by_role("button", name="Accept")
    accept.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_have_text("Accept “Pay invoice 41”?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    # The focus stays in the dialog.
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Accept")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("Comment")).to_be_focused()  # the first control (issue 17)
    page.keyboard.press("Shift+Tab")
    expect(dialog.get_by_role("button", name="Accept")).to_be_focused()
    check(page, "confirm-accept-desktop")

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(accept).to_be_focused()  # back where it was
    assert workflows.status(execution) == "RUNNING"  # nothing was sent
    expect(row.locator(".status")).to_have_text("Waiting for you")

    page.keyboard.press("Enter")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert workflows.status(execution) == "RUNNING"

    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the dialog's Accept
    expect(page.locator("#message")).to_have_text("Accepted “Pay invoice 41”.")
    expect(page.locator("#message")).to_have_class("ok")
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    expect(page.get_by_text("No steps waiting for you.")).to_be_visible()


def test_rejecting_by_keyboard_with_a_reason(page, app, callbacks, workflows):
    [(record_id, execution)] = callbacks("Verify Ada's device")
    sign_in(page, "reviewer")
    page.locator(f"tr[data-id={record_id}]").get_by_role("button", name="Reject").press("Enter")
    dialog = page.get_by_role("dialog")
    reason = dialog.get_by_label("Reason")
    expect(reason).to_be_focused()
    page.keyboard.type("Wrong serial number")
    page.keyboard.press("Enter")  # Enter in the reason submits the confirmation
    expect(page.locator("#message")).to_have_text("Rejected “Verify Ada's device”.")
    expect(page.locator("#message")).not_to_have_class("ok")  # a rejection is never green
    described = workflows.wait_done(execution)
    assert (described["status"], described["cause"]) == ("FAILED", "Wrong serial number")
    reviewer = user_id(app, REVIEWER)
    acl = app.get(f"{STEPS}/records/{record_id}", headers=ADMIN).json["permissions"]
    assert sorted(acl["write"]) == sorted([user_id(app, ADMIN), reviewer])  # unchanged


def test_enter_in_the_detail_views_reason_opens_the_confirmation(page, callbacks, workflows):
    [(record_id, execution)] = callbacks("Ship release 2.0", input={"version": "2.0"})
    page.goto(page.url.split("#")[0] + f"#/steps/{record_id}")
    sign_in(page, "reviewer")
    expect(page.locator("#d-subject")).to_be_focused()  # the main heading, after sign-in
    assert page.title() == "Ship release 2.0 – Manual StepFunction Dashboard"
    reason = page.get_by_label("Reason for rejecting Ship release 2.0")
    reason.fill("Not tested")
    reason.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading")).to_have_text("Reject “Ship release 2.0”?")
    expect(dialog.get_by_label("Reason")).to_have_value("Not tested")
    page.keyboard.press("Escape")
    expect(reason).to_be_focused()
    assert workflows.status(execution) == "RUNNING"
    # The buttons come before the raw input.
    buttons = page.locator("#d-actions").bounding_box()
    assert buttons["y"] < page.locator("#d-raw").bounding_box()["y"]


def test_the_most_urgent_first_with_the_deadline_in_words(page, app, collection):
    data = {"taskToken": "(stored)"}
    writable = {"write": [user_id(app, REVIEWER)]}
    rows = [
        ({"id": "later", "subject": "Later", "deadline": iso(50 * HOUR), **data}, writable),
        ({"id": "none", "subject": "No deadline", **data}, writable),
        ({"id": "late", "subject": "Late", "deadline": iso(-49 * HOUR), **data}, writable),
        ({"id": "soon", "subject": "Soon", "deadline": iso(3 * HOUR + MINUTE), **data}, writable),
    ]
    add_records(app, rows)
    sign_in(page, "reviewer")
    expect(page.locator("tbody tr .subject")).to_have_text(
        ["Late", "Soon", "Later", "No deadline"]
    )
    due = page.locator("tbody tr .due")
    expect(due).to_have_text(["overdue by 2 d", "due in 3 h", "due in 2 d", "no deadline"])
    expect(due.first).to_have_class("due overdue")
    expect(due.nth(1)).to_have_attribute(
        "title", "Due " + page.evaluate("d => DATE.format(new Date(d))", rows[3][0]["deadline"])
    )
    expect(page.locator("#count")).to_have_text("· 4 steps")

    page.locator("#q").fill("LATE")  # any case, in the subject
    page.locator("#q").press("Enter")
    expect(page.locator("tbody tr .subject")).to_have_text(["Late", "Later"])
    expect(page.locator("#count")).to_have_text("· 2 steps")
    page.locator("#q").fill("nothing like it")
    page.locator("#q").press("Enter")
    expect(page.locator("#empty")).to_have_text("No steps match “nothing like it”.")


def test_read_only_users_get_no_buttons_and_blocked_steps_say_why(page, app, collection):
    reviewer = user_id(app, REVIEWER)
    rows = [
        (
            {"id": "readable", "subject": "Only read", "taskToken": "(stored)"},
            {"read": [reviewer]},
        ),
        ({"id": "unlinked", "subject": "Not linked"}, {"write": [reviewer]}),
        ({"id": "mine", "subject": "Mine", "taskToken": "(stored)"}, {"write": [reviewer]}),
    ]
    add_records(app, rows)
    page.goto(page.url.split("#")[0] + "#/all")
    sign_in(page, "reviewer")
    expect(page.locator("tbody tr")).to_have_count(3)
    readable = page.locator("tr[data-id=readable]")
    expect(readable.locator(".status")).to_have_text("Waiting for a reviewer")
    expect(readable.get_by_role("button")).to_have_count(0)
    unlinked = page.locator("tr[data-id=unlinked]")
    expect(unlinked.locator(".status")).to_have_text("Can't be answered yet")
    expect(unlinked.get_by_role("button")).to_have_count(0)
    expect(unlinked.locator(".why")).to_contain_text("Ask whoever set up this step to link it")
    expect(page.locator("tr[data-id=mine]").get_by_role("button")).to_have_count(2)
    expect(page.locator("#steps-heading")).to_be_focused()
    assert page.title() == "All steps – Manual StepFunction Dashboard"


def test_people_are_names_never_hashes(browser, server, app, callbacks, workflows):
    """Basic auth: the name typed at sign-in, recorded by the plugin; oneself: "you"."""
    stranger = user_id(app, STRANGER)
    [(record_id, execution)] = callbacks("Sign the contract")
    step = {"subject": "Shared", "taskToken": "(stored)"}
    add_records(app, [({**step, "id": "shared"}, {"write": [stranger, user_id(app, REVIEWER)]})])
    app.get(STEPS + "/stepfunction/inbox", headers=STRANGER)  # the stranger signed in once

    page = open_page(browser, server + "/v1/stepfunction/dashboard/")
    sign_in(page, "reviewer")
    expect(page.locator("tr[data-id=shared] .reviewer")).to_have_text("you, stranger")
    expect(page.locator(f"tr[data-id={record_id}] .reviewer")).to_have_text("you")
    page.locator(f"tr[data-id={record_id}]").get_by_role("button", name="Accept").click()
    page.get_by_role("dialog").get_by_role("button", name="Accept").click()
    expect(page.locator("#message")).to_have_text("Accepted “Sign the contract”.")
    page.goto(server + f"/v1/stepfunction/dashboard/#/steps/{record_id}")
    expect(dd(page, "Answered by")).to_have_text("you")
    page.context.close()

    page = open_page(browser, server + f"/v1/stepfunction/dashboard/#/steps/{record_id}")
    sign_in(page, "admin")
    expect(dd(page, "Answered by")).to_have_text("reviewer")
    expect(dd(page, "Reviewers")).to_have_text("reviewer")
    assert "basicauth" not in page.locator("main").inner_text()
    page.context.close()


def test_kinto_accounts_are_shown_by_their_id(browser, app_factory, emulator):
    settings = {
        "includes": "stepfunction kinto.plugins.history kinto.plugins.accounts",
        "multiauth.policies": "account",
        "multiauth.policy.account.use": "kinto.plugins.accounts.AccountsPolicy",
        "account_create_principals": "system.Everyone",
        "account_write_principals": "account:admin",
    }
    app = app_factory(**settings)
    for name in ("admin", "ada"):
        body = {"data": {"password": "secret"}}
        app.put_json(f"/accounts/{name}", body, status=201)
    admin = {"Authorization": "Basic " + base64.b64encode(b"admin:secret").decode()}
    app.put_json("/buckets/stepfunction", {}, headers=admin)
    app.put_json(STEPS, {}, headers=admin)
    step = {"data": {"subject": "Ada's step", "taskToken": "(stored)"}}
    step["permissions"] = {"write": ["account:ada"]}
    app.put_json(STEPS + "/records/step", step, headers=admin)
    with serve(app) as server:
        page = open_page(browser, server + "/v1/stepfunction/dashboard/#/all")
        sign_in(page, "admin")
        expect(page.locator("tr[data-id=step] .reviewer")).to_have_text("ada")
        page.context.close()


def test_openid_users_are_shown_by_their_userinfo(browser, app_factory):
    with fake_openid.FakeProvider() as provider:
        app = app_factory(**provider.settings())
        app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
        app.put_json(STEPS, {}, headers=ADMIN)
        openid = {"Authorization": f"Bearer {fake_openid.ACCESS_TOKEN}"}
        ada = app.get("/", headers=openid).json["user"]["id"]
        app.get(STEPS + "/stepfunction/inbox", headers=openid)  # Ada signs in once
        step = {"data": {"subject": "Ada's step", "taskToken": "(stored)"}}
        step["permissions"] = {"write": [ada]}
        app.put_json(STEPS + "/records/step", step, headers=ADMIN)
        with serve(app) as server:
            page = open_page(browser, server + "/v1/stepfunction/dashboard/#/all")
            sign_in(page, "admin")
            expect(page.locator("tr[data-id=step] .reviewer")).to_have_text(
                f"{fake_openid.USER}@example.com"
            )
            page.context.close()


@pytest.mark.parametrize("device", WIDTHS)
def test_every_view_fits_and_passes_axe(browser, server, app, collection, device):
    """Sign-in, empty inbox, inbox, all steps, a step, the confirmation: at 1280 and 375 px."""
    page = open_page(browser, server + "/v1/stepfunction/dashboard/", WIDTHS[device])
    check(page, f"signin-{device}")
    sign_in(page, "reviewer")
    expect(page.locator("#steps-heading")).to_be_focused()
    assert page.title() == "Waiting for you – Manual StepFunction Dashboard"
    expect(page.get_by_text("No steps waiting for you.")).to_be_visible()
    check(page, f"inbox-empty-{device}")
    for control in ("#q", "#sort"):  # WCAG 1.4.11: borders of 3:1 at least
        assert contrast(page, control) >= 3, control

    reviewer = user_id(app, REVIEWER)
    long = "Approve the quarterly payment run for the Northern European subsidiaries " * 2
    rows = [
        (
            {
                "id": "pay",
                "subject": long.strip(),
                "taskToken": "(stored)",
                "deadline": iso(-HOUR),
                "reviewer": ["finance-approvals@example.com"],
            },
            {"write": [reviewer]},
        ),
        (
            {
                "id": "ship",
                "subject": "Ship 2.0",
                "taskToken": "(stored)",
                "deadline": iso(5 * HOUR),
            },
            {"write": [reviewer]},
        ),
        (
            {
                "id": "done",
                "subject": "Done",
                "status": "SUCCEED",
                "answer": {"answer": "SUCCEED", "by": reviewer, "at": iso(-HOUR)},
            },
            {"read": [reviewer]},
        ),
        (
            {
                "id": "no",
                "subject": "Refused",
                "status": "FAIL",
                "answer": {"answer": "FAIL", "by": reviewer, "at": iso(-HOUR), "cause": "No"},
            },
            None,
        ),
        ({"id": "blocked", "subject": "Unlinked"}, {"write": [reviewer]}),
    ]
    add_records(app, rows)
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("tbody tr")).to_have_count(3)
    check(page, f"inbox-{device}")
    page.get_by_role("link", name="All steps").click()
    expect(page.locator("tbody tr")).to_have_count(5)
    expect(page.locator("#steps-heading")).to_be_focused()
    check(page, f"all-{device}")
    page.locator("tr[data-id=pay] .subject a").click()
    expect(page.locator("#d-subject")).to_be_focused()
    check(page, f"step-pending-{device}")
    page.get_by_role("button", name="Reject").click()
    check(page, f"confirm-reject-{device}")
    page.keyboard.press("Escape")
    page.goto(server + "/v1/stepfunction/dashboard/#/steps/no")
    expect(page.locator("#d-status")).to_have_text("Rejected")
    check(page, f"step-rejected-{device}")
    page.goto(server + "/v1/stepfunction/dashboard/#/steps/blocked")
    expect(page.locator("#d-why")).to_be_visible()
    check(page, f"step-blocked-{device}")
    page.get_by_role("link", name="Sign out").click()
    expect(page.locator("#signin-heading")).to_be_focused()
    assert page.title() == "Sign in – Manual StepFunction Dashboard"
    check(page, f"signed-out-{device}")
    assert page.errors == []
    page.context.close()
