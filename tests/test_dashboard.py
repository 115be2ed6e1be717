"""The dashboard: its files as Kinto serves them, and a reviewer using it in a real Chromium."""

import contextlib
import time
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect, sync_playwright
from webtest.http import StopableWSGIServer

from stepfunction.testing.browser import launch_chromium
from tests import fake_openid
from tests.conftest import ADMIN, REVIEWER, STEPS, STRANGER, add_records, post_step, user_id


DASHBOARD = "/stepfunction/dashboard/"
SCREENSHOT = "/tmp/dashboard.png"


# What Kinto serves.


def test_page_is_served_with_a_strict_content_security_policy(app):
    response = app.get(DASHBOARD)
    assert response.content_type == "text/html"
    assert "<title>Manual StepFunction Dashboard</title>" in response.text
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "http" not in response.text  # nothing from elsewhere


@pytest.mark.parametrize(
    "name,content_types",
    [
        ("index.html", {"text/html"}),
        ("dashboard.js", {"text/javascript", "application/javascript"}),
        ("dashboard.css", {"text/css"}),
    ],
)
def test_assets_are_served_with_their_content_type(app, name, content_types):
    response = app.get(DASHBOARD + name)
    assert response.content_type in content_types
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "http://" not in response.text and "https://" not in response.text


def test_the_bare_path_redirects_to_the_slash_keeping_the_query(app):
    # Relative (tests/test_link_hardening.py checks that the Host header plays no part).
    response = app.get("/stepfunction/dashboard", status=307)
    assert response.headers["Location"] == "dashboard/"
    response = app.get("/stepfunction/dashboard?bucket=b&collection=c", status=307)
    assert response.headers["Location"] == "dashboard/?bucket=b&collection=c"


def test_the_page_has_its_own_icon(app):
    """Else browsers ask for /favicon.ico, which Kinto does not have: a 404 on every visit."""
    assert '<link rel="icon" href="favicon.svg"' in app.get(DASHBOARD).text
    response = app.get(DASHBOARD + "favicon.svg")
    assert response.content_type == "image/svg+xml"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["missing.js", "../dashboard.py", "%2e%2e/dashboard.py"])
def test_nothing_else_is_served(app, path):
    app.get(DASHBOARD + path, status=404)


def test_page_needs_no_authentication(app):
    app.get(DASHBOARD, headers={"Authorization": "Basic bm9ib2R5"}, status=200)


# A reviewer in a browser. One backend is enough: the endpoint's own tests cover both.


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)  # Playwright's own Chromium, else the system's
        yield browser
        browser.close()


@contextlib.contextmanager
def serve(app):
    """The Kinto app over real HTTP, for the browser: its URL."""
    server = StopableWSGIServer.create(app.app, host="127.0.0.1")
    assert server.wait()
    try:
        yield server.application_url.rstrip("/")
    finally:
        server.shutdown()


@pytest.fixture
def server(app):
    with serve(app) as url:
        yield url


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 520})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    # Chromium logs every non-2xx fetch: the tests check how the page shows those.
    page.on(
        "console",
        lambda m: (
            m.type == "error" and "Failed to load resource" not in m.text and errors.append(m)
        ),
    )
    page.goto(server + "/v1/stepfunction/dashboard")  # redirected to the slash
    yield page
    context.close()
    assert errors == []


@pytest.mark.parametrize("backend", ["memory"])
def test_the_page_loads_without_a_failed_request(browser, server, collection):
    """Every request of the page and of signing in succeeds, and nothing is logged as an error
    (the ``page`` fixture lets the "Failed to load resource" errors through: not here)."""
    context = browser.new_context()
    page = context.new_page()
    failures = []
    page.on("requestfailed", lambda request: failures.append((request.url, request.failure)))
    page.on("response", lambda r: r.status >= 400 and failures.append((r.url, r.status)))
    page.on("console", lambda m: m.type in ("error", "warning") and failures.append(m.text))
    page.on("pageerror", lambda error: failures.append(error))
    requested = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(server + "/v1/stepfunction/dashboard/", wait_until="networkidle")
    sign_in(page, "reviewer")
    expect(page.get_by_text("No steps waiting for you.")).to_be_visible()
    page.wait_for_load_state("networkidle")
    context.close()
    assert failures == []
    assert server + "/v1/stepfunction/dashboard/favicon.svg" in requested


def dd(page, label):
    """The detail view's value of ``label``."""
    return page.locator(f"#d-fields dd[data-field='{label}']")


def sign_in(page, user):
    page.get_by_label("User").fill(user)
    page.get_by_label("Password").fill("secret")  # get_user_headers' password
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#user")).to_have_text(user)


@pytest.fixture
def waiting(app, collection, workflows):
    """A step the reviewer may answer, and the execution waiting on it."""

    def waiting(subject):
        activity = workflows.activity()
        execution = workflows.start(workflows.activity_machine(activity))
        workflows.wait_scheduled(execution)
        record = {"subject": subject, "reviewer": "reviewer@example.com", "activityArn": activity}
        permissions = {"write": [user_id(app, REVIEWER)]}
        response = app.post_json(
            collection + "/records", {"data": record, "permissions": permissions}, headers=ADMIN
        )
        return response.json["data"]["id"], execution

    return waiting


@pytest.mark.parametrize("backend", ["memory"])
def test_reviewer_accepts_a_step(page, waiting, workflows):
    subject = "Sign off <b>add-on</b> 1.0 & co"  # shown as text, never as HTML
    record_id, execution = waiting(subject)

    sign_in(page, "reviewer")
    row = page.locator(f"tr[data-id='{record_id}']")
    expect(row.locator(".subject")).to_have_text(subject)
    expect(row.locator(".status")).to_have_text("Waiting for you")
    assert page.locator("td b").count() == 0
    expect(page.get_by_text("No steps waiting for you.")).to_be_hidden()

    row.get_by_role("button", name="Accept").click()
    page.locator("#confirm").get_by_role("button", name="Accept").click()
    expect(page.locator("#message")).to_have_text(f"Accepted “{subject}”.")
    expect(row).to_have_count(0)  # answered: out of the inbox
    expect(page.get_by_text("No steps waiting for you.")).to_be_visible()
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    page.get_by_role("link", name="All steps").click()
    expect(row.locator(".status")).to_have_text("Approved by you")
    expect(row.get_by_role("button")).to_have_count(0)

    # Signed in for the tab's life; signing out forgets the credentials.
    page.reload()
    expect(row.locator(".status")).to_have_text("Approved by you")
    page.get_by_role("link", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()


@pytest.mark.parametrize("backend", ["memory"])
def test_reviewer_rejects_a_step_with_a_reason(page, waiting, workflows):
    first_id, first = waiting("Approve the payment #41")
    record_id, execution = waiting("Verify the device of Ada")

    sign_in(page, "reviewer")
    page.locator("#sort").select_option("-last_modified")
    rows = page.locator("tbody tr")
    expect(rows.first).to_have_attribute("data-id", record_id)  # the newest first
    rows.last.get_by_role("button", name="Accept").click()
    page.locator("#confirm").get_by_role("button", name="Accept").click()
    expect(rows).to_have_count(1)
    row = page.locator(f"tr[data-id='{record_id}']")
    row.get_by_role("button", name="Reject").click()
    dialog = page.locator("#confirm")
    expect(dialog.get_by_role("heading")).to_have_text("Reject “Verify the device of Ada”?")
    dialog.get_by_label("Reason").fill("Wrong serial number")
    page.screenshot(path=SCREENSHOT)
    dialog.get_by_role("button", name="Reject").click()
    expect(page.locator("#message")).to_have_text("Rejected “Verify the device of Ada”.")
    expect(page.locator("#message")).to_have_class("info")  # never in green
    expect(rows).to_have_count(0)
    described = workflows.wait_done(execution)
    assert (described["status"], described["cause"]) == ("FAILED", "Wrong serial number")
    assert workflows.wait_done(first)["status"] == "SUCCEEDED"
    page.get_by_role("link", name="All steps").click()
    page.locator("#sort").select_option("-last_modified")
    expect(page.locator("tbody tr .status")).to_have_text(["Rejected by you", "Approved by you"])


@pytest.mark.parametrize("backend", ["memory"])
def test_answer_errors_show_kintos_message(page, app, waiting, workflows):
    record_id, execution = waiting("Already gone")
    sign_in(page, "reviewer")
    row = page.locator(f"tr[data-id='{record_id}']")
    expect(row.locator(".status")).to_have_text("Waiting for you")
    workflows.sfn.stop_execution(executionArn=execution)  # nobody waits any more

    row.get_by_role("button", name="Accept").click()
    page.locator("#confirm").get_by_role("button", name="Accept").click()
    expect(page.locator("#message")).to_have_class("error")
    expect(page.locator("#message")).to_contain_text(
        "“Already gone” was not answered: No execution is waiting on activity"
    )
    expect(row.locator(".status")).to_have_text("Waiting for you")
    expect(page.locator("#problem")).to_be_hidden()


@pytest.mark.parametrize("backend", ["memory"])
def test_the_list_refreshes_every_minute(page, app, collection):
    page.clock.install()
    page.reload()
    sign_in(page, "reviewer")
    expect(page.get_by_text("No steps waiting for you.")).to_be_visible()
    post_step(app, {"subject": "New step"})

    # The installed clock still flows in real time too: keep well clear of the minute.
    page.clock.run_for(30_000)
    expect(page.locator("tbody tr")).to_have_count(0)
    page.clock.run_for(31_000)
    expect(page.locator("tbody tr .subject")).to_have_text(["New step"])
    expect(page.get_by_text("No steps waiting for you.")).to_be_hidden()


@pytest.mark.parametrize("backend", ["memory"])
def test_a_user_who_may_not_read_the_collection_is_told_so(page, collection):
    sign_in(page, "stranger")
    expect(page.get_by_text("No steps waiting for you.")).to_be_visible()
    page.get_by_role("link", name="All steps").click()
    expect(page.get_by_text("No steps you may see here yet.")).to_be_visible()  # calm, too
    expect(page.locator("#problem")).to_be_hidden()
    expect(page.locator("table")).to_be_hidden()


@pytest.mark.parametrize("backend", ["memory"])
def test_bucket_and_collection_come_from_the_query(page, server, collection):
    page.goto(server + "/v1/stepfunction/dashboard/?bucket=stepfunction&collection=other")
    sign_in(page, "reviewer")
    expect(page.locator("#where")).to_have_text("stepfunction/other")
    expect(page.locator("#problem")).to_have_text("stepfunction/other holds no manual steps.")


def test_a_malformed_record_is_an_invalid_row(page, server, app, collection):
    """Records written straight into the storage can have any shape: one with a status that
    is not a string is shown as invalid, and the others still work."""
    writable = {"write": [user_id(app, REVIEWER)]}
    odd = {"id": "odd", "subject": ["not", 1], "status": 42, "reviewer": {"x": 1}}
    fine = {"id": "fine", "subject": "Fine step", "taskToken": "(stored)"}
    add_records(app, [(odd, writable), (fine, writable)])

    page.goto(server + "/v1/stepfunction/dashboard/#/all")
    sign_in(page, "reviewer")

    expect(page.locator("tr[data-id=odd] .status")).to_have_text("Invalid status")
    expect(page.locator("tr[data-id=odd] .subject")).to_have_text("odd")
    expect(page.locator("tr[data-id=odd] button")).to_have_count(0)
    expect(page.locator("tr[data-id=fine] .subject")).to_have_text("Fine step")
    expect(page.locator("tr[data-id=fine] button.accept")).to_be_visible()


# The inbox, a step in detail, signing in with OpenID Connect.

MACHINE = "arn:aws:states:us-west-2:123456789012:stateMachine:Payments"
EXECUTION = "arn:aws:states:us-west-2:123456789012:execution:Payments:run-41"


@pytest.mark.parametrize("backend", ["memory"])
def test_the_inbox_lists_only_the_pending_steps_the_user_may_answer(page, app, collection):
    reviewer = user_id(app, REVIEWER)
    post_step(app, {"subject": "Mine"}, record_id="mine")
    add_records(app, [({"id": "answered", "status": "SUCCEED"}, {"write": [reviewer]})])
    readable = {"data": {"subject": "Only read"}, "permissions": {"read": [reviewer]}}
    app.put_json(STEPS + "/records/readonly", readable, headers=ADMIN)
    post_step(app, {"subject": "Not mine"}, reviewer=STRANGER, record_id="strangers")

    sign_in(page, "reviewer")
    expect(page.locator("#steps-heading")).to_have_text("Waiting for you")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_have_attribute("data-id", "mine")
    expect(page.locator("#tab-inbox")).to_have_class("current")

    page.get_by_role("link", name="All steps").click()
    ids = ["mine", "readonly", "strangers", "answered"]  # the open ones first, oldest first
    expect(page.locator("tbody tr")).to_have_count(len(ids))
    assert [r.get_attribute("data-id") for r in page.locator("tbody tr").all()] == ids
    page.get_by_role("link", name="Inbox").click()
    expect(page.locator("tbody tr")).to_have_count(1)


@pytest.mark.parametrize("backend", ["memory"])
def test_the_detail_view_shows_the_step(page, app, collection):
    audit = {
        "answer": "FAIL",
        "by": "basicauth:someone",
        "at": "2026-05-04T10:11:12.000+00:00",
        "error": "Not signing off",
        "cause": "Wrong <i>serial</i>",
    }
    step = {
        "id": "answered",
        "subject": "Verify the device of Ada",
        "stateMachineArn": MACHINE,
        "executionArn": EXECUTION,
        "input": '{"device": "<b>X1</b>", "serial": 42}',
        "status": "FAIL",
        "answer": audit,
    }
    add_records(app, [(step, {"read": [user_id(app, REVIEWER)]})])
    post_step(app, {"subject": "Pending", "executionArn": EXECUTION}, record_id="pending")

    page.goto(page.url.split("#")[0] + "#/steps/answered")
    sign_in(page, "reviewer")
    expect(page.locator("#d-subject")).to_have_text("Verify the device of Ada")
    expect(page.locator("#d-status")).to_have_text("Rejected")
    expect(dd(page, "State machine")).to_have_text(f"Payments {MACHINE}")
    expect(dd(page, "Execution")).to_have_text(f"run-41 {EXECUTION}")
    expect(dd(page, "Answered by")).to_have_text("a Basic auth user")  # never a hash
    expect(dd(page, "Answered")).to_have_text(
        page.evaluate("d => DATE.format(new Date(d))", audit["at"])  # the one date format
    )
    expect(dd(page, "Error")).to_have_text("Not signing off")
    expect(dd(page, "Reason")).to_have_text("Wrong <i>serial</i>")
    expect(dd(page, "Output")).to_have_count(0)  # nothing to say: no row
    expected_input = '{\n  "device": "<b>X1</b>",\n  "serial": 42\n}'
    expect(page.locator("#d-input")).to_have_text(expected_input)
    expect(dd(page, "Created")).to_have_count(0)  # no history
    expect(dd(page, "Last changed")).to_be_visible()
    expect(page.locator("#d-actions button")).to_have_count(0)
    assert page.locator("#step b, #step i").count() == 0

    # From the inbox: a pending step, created through Kinto (its history tells when).
    page.get_by_role("link", name="Back to the steps").click()
    page.get_by_role("link", name="Pending").click()
    expect(page.locator("#d-subject")).to_have_text("Pending")
    expect(page.locator("#d-status")).to_have_text("Can't be answered yet")
    expect(page.locator("#d-why")).to_have_text(
        "This step is not linked to a workflow yet (it has no task token and no activity). "
        "Ask whoever set up this step to link it."
    )
    expect(dd(page, "State machine")).to_have_text("Payments")
    expect(dd(page, "Answered by")).to_have_count(0)
    expect(dd(page, "Created")).to_be_visible()
    expect(page.locator("#d-actions button")).to_have_count(0)
    assert page.locator("#d-fields dd").all_text_contents().count("—") == 0


@pytest.mark.parametrize("backend", ["memory"])
def test_a_pending_step_the_user_may_only_read_has_no_buttons(page, app, collection):
    readable = {
        "data": {"subject": "Only read"},
        "permissions": {"read": [user_id(app, REVIEWER)]},
    }
    app.put_json(STEPS + "/records/readonly", readable, headers=ADMIN)
    page.goto(page.url.split("#")[0] + "#/steps/readonly")
    sign_in(page, "reviewer")
    expect(page.locator("#d-status")).to_have_text("Can't be answered yet")
    expect(page.locator("#d-actions button")).to_have_count(0)


@pytest.mark.parametrize("backend", ["memory"])
def test_hostile_fields_show_as_text_or_invalid(page, app, collection):
    hostile = (
        '<img src=x onerror="document.title=\'owned\'"><script>document.title="owned"</script>'
    )
    post_step(app, {"subject": hostile, "input": hostile}, record_id="hostile")
    odd = {"id": "odd", "subject": {"x": 1}, "stateMachineArn": 7, "answer": "yes"}
    add_records(app, [(odd, {"write": [user_id(app, REVIEWER)]})])

    sign_in(page, "reviewer")
    expect(page.locator("tr[data-id=hostile] .subject")).to_have_text(hostile)
    expect(page.locator("tr[data-id=odd] .subject")).to_have_text("odd")
    page.locator("tr[data-id=hostile] .subject a").click()
    expect(page.locator("#d-subject")).to_have_text(hostile)
    expect(page.locator("#d-input")).to_have_text(hostile)
    page.goto(page.url.split("#")[0] + "#/steps/odd")
    expect(page.locator("#d-subject")).to_have_text("odd")
    expect(dd(page, "State machine")).to_have_text("invalid")
    expect(dd(page, "Answer")).to_have_text("invalid")
    assert page.locator("main img, main script").count() == 0
    assert page.title() == "odd – Manual StepFunction Dashboard"


@pytest.mark.parametrize("backend", ["memory"])
def test_the_inbox_of_10000_steps_shows_its_first_page(page, app, collection):
    count = 10_000

    def step(i):  # one in a hundred pending, spread over the collection
        return {"id": f"r{i:05d}", "subject": f"Step {i}", **(done if i % 100 else {})}

    done = {"status": "SUCCEED"}
    add_records(app, ((step(i), None) for i in range(count)))

    started = time.monotonic()
    sign_in(page, "admin")  # the author: every pending step is theirs to answer
    expect(page.locator("tbody tr")).to_have_count(50)
    elapsed = time.monotonic() - started
    expect(page.locator("tbody tr").first).to_have_attribute("data-id", "r00000")  # oldest
    print(f"\ninbox of {count} records: first page shown {elapsed:.3f} s after signing in")

    page.get_by_role("button", name="More steps").click()
    expect(page.locator("tbody tr")).to_have_count(100)
    expect(page.locator("tbody tr").last).to_have_attribute("data-id", "r09900")
    expect(page.get_by_role("button", name="More steps")).to_be_hidden()


@pytest.mark.parametrize("backend", ["memory"])
def test_no_openid_button_without_the_capability(page, collection):
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    page.wait_for_load_state("networkidle")  # the capabilities were read
    expect(page.locator("#openid")).to_be_hidden()
    expect(page.locator("button.openid")).to_have_count(0)


@pytest.mark.parametrize("backend", ["memory"])
def test_openid_connect_sign_in(browser, app_factory):
    """The button goes to Kinto's login endpoint, the provider sends the browser back to
    Kinto's token endpoint, which sends it back to the page with the token: a Bearer token."""
    with fake_openid.FakeProvider() as provider:
        app = app_factory(**provider.settings())
        assert "openid" in app.get("/").json["capabilities"]
        with serve(app) as server:
            context = browser.new_context()
            page = context.new_page()
            dashboard = server + "/v1/stepfunction/dashboard/"
            page.goto(dashboard)
            button = page.get_by_role("button", name="Sign in with google")
            with page.expect_request(lambda r: "/v1/openid/google/login" in r.url) as login:
                button.click()
            query = parse_qs(urlparse(login.value.url).query)
            assert query == {
                "callback": [dashboard + "#token="],
                "scope": ["openid email profile"],
            }
            assert urlparse(login.value.url).path == "/v1/openid/google/login"

            expect(page.locator("#user")).to_have_text(f"{fake_openid.USER}@example.com")
            assert page.url == dashboard  # the token is not left in the address
            expect(page.get_by_text("No steps waiting for you.")).to_be_visible()
            auth = page.evaluate("sessionStorage.getItem('stepfunction-dashboard-auth')")
            assert auth == f"Bearer {fake_openid.ACCESS_TOKEN}"
            context.close()
