"""One-click links from the mails: what scanners, reviewers and attackers get from them."""

import time

import pytest
from playwright.sync_api import expect, sync_playwright
from webtest.http import StopableWSGIServer

from stepfunction import links
from stepfunction.testing.browser import launch_chromium
from stepfunction.testing.mailbox import free_port, links_of
from tests.conftest import (
    ADMIN,
    LINK_SECRET,
    REVIEWER,
    STEPS,
    answer_url,
    cross_site,
    mail_settings,
    permissions_of,
    post_step,
    user_id,
    wait_for,
)


ALICE, BOB = "alice@example.com", "bob@example.com"
SCREENSHOT = "/tmp/link-confirmation.png"


def path_of(url):
    """A link's path for the test app (which adds the /v1 prefix itself)."""
    return url.split("/v1", 1)[1]


def record_of(app, record_id):
    return app.get(f"{STEPS}/records/{record_id}", headers=ADMIN).json["data"]


def setup_steps(app):
    reviewer = user_id(app, REVIEWER)
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {"permissions": {"read": [reviewer]}}, headers=ADMIN)


@pytest.fixture
def mailed(app_factory, mailbox, callback, start_worker):
    """``mailed(data=…, **settings)``: a pending callback step for Alice and Bob, and its mails.

    Returns ``(app, record, execution, {address: links})``.
    """

    def make(data=None, payload=None, timeout=300, **settings):
        app = app_factory(**mail_settings(mailbox, **settings))
        setup_steps(app)
        token, execution = callback(payload or {"amount": 12}, timeout=timeout)
        start_worker(app)
        body = {
            "subject": "Pay invoice 42",
            "reviewer": [ALICE, BOB],
            "taskToken": token,
            "executionArn": execution,
            **(data or {}),
        }
        record = post_step(app, body)
        by_address = {a: links_of(mailbox.wait(1, a)[0]) for a in (ALICE, BOB)}
        return app, record, execution, by_address

    return make


def submit(app, page, status=200):
    """Press the page's button (the test app adds the /v1 prefix to the form's action)."""
    form = page.forms[0]
    assert form.method.upper() == "POST" and form.action == page.request.path
    return app.post(path_of(form.action), dict(form.submit_fields()), status=status)


def confirm(app, url, reason=None, status=200):
    """Open the link as a browser does, then press its button."""
    page = app.get(path_of(url))
    assert page.status_code == 200
    if reason is not None:
        page.forms[0]["reason"] = reason
    return submit(app, page, status)


# Scanners: GET and HEAD change nothing.


def test_opening_a_link_asks_for_confirmation_and_changes_nothing(mailed, workflows):
    app, record, execution, mails = mailed()
    url = mails[ALICE]["Approve"]
    acl = permissions_of(app, record["id"])

    for _ in range(3):  # a scanner, an unfurler, the reviewer
        page = app.get(path_of(url))
        assert page.status_code == 200
        assert "Approve this step?" in page.text
        assert ALICE in page.text and "Pay invoice 42" in page.text
        head = app.head(path_of(url))
        assert head.status_code == 200 and head.body == b""

    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "form-action 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "<script" not in page.text
    assert workflows.status(execution) == "RUNNING"
    assert record_of(app, record["id"]) == record
    assert permissions_of(app, record["id"]) == acl


def test_confirming_approves_as_the_recipient(mailed, workflows):
    app, record, execution, mails = mailed()
    acl = permissions_of(app, record["id"])

    done = confirm(app, mails[ALICE]["Approve"])

    assert "Approved" in done.text
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    stored = record_of(app, record["id"])
    assert stored["status"] == "SUCCEED"
    assert stored["answer"]["by"] == f"link:{ALICE}"
    assert permissions_of(app, record["id"]) == acl
    history = app.get("/buckets/stepfunction/history", headers=ADMIN).json["data"]
    assert any(
        (h["target"]["data"].get("answer") or {}).get("by") == f"link:{ALICE}" for h in history
    )

    again = app.get(path_of(mails[ALICE]["Approve"]), status=410)
    assert "This link was already used" in again.text
    assert "You approved this step less than a minute ago (" in again.text
    assert "with the Approve button of your mail" in again.text
    # Every other link of the step stops working too, and says who answered.
    mine = app.get(path_of(mails[ALICE]["Reject"]), status=410).text
    assert "You already answered" in mine and "You approved this step" in mine
    for url in (mails[BOB]["Approve"], mails[BOB]["Reject"]):
        page = app.get(path_of(url), status=410).text
        assert "Already answered elsewhere" in page
        assert f"This step was approved by {ALICE} with a mailed link less than a minute" in page


def test_reject_sends_the_reason_as_the_cause(mailed, workflows):
    app, record, execution, mails = mailed()

    confirm(app, mails[BOB]["Reject"], reason="The amount is wrong <b>twice</b>")

    described = workflows.wait_done(execution)
    assert described["status"] == "FAILED"
    assert described["cause"] == "The amount is wrong <b>twice</b>"
    stored = record_of(app, record["id"])
    assert stored["status"] == "FAIL"
    assert stored["answer"]["by"] == f"link:{BOB}"
    assert stored["answer"]["cause"] == "The amount is wrong <b>twice</b>"


def test_a_page_opened_twice_answers_from_either_tab(mailed, workflows):
    app, _, execution, mails = mailed()
    first = app.get(path_of(mails[ALICE]["Approve"]))
    app.get(path_of(mails[ALICE]["Approve"]))  # the same link, in another tab
    submit(app, first, status=200)
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_a_replayed_post_sends_nothing_again(mailed, workflows):
    app, record, execution, mails = mailed()
    page = app.get(path_of(mails[ALICE]["Approve"]))
    submit(app, page, status=200)
    replay = submit(app, page, status=410)
    assert "This link was already used" in replay.text
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


# Links that no longer answer: each has its page, and sends nothing.


def tampered(url):
    head, token = url.rsplit("/", 1)
    middle = len(token) // 2
    swapped = "A" if token[middle] != "A" else "B"
    return f"{head}/{token[:middle]}{swapped}{token[middle + 1 :]}"


def test_a_tampered_link_is_invalid(mailed, workflows):
    app, record, execution, mails = mailed()
    url = mails[ALICE]["Reject"]
    for bad in (tampered(url), url[:-1], url + "x", url.rsplit("/", 1)[0] + "/x"):
        page = app.get(path_of(bad), status=404)
        assert page.content_type == "text/html"
        assert "This link is not valid" in page.text
        app.post(path_of(bad), {"csrf": "x"}, status=404)
    assert workflows.status(execution) == "RUNNING"
    assert record_of(app, record["id"]) == record


def test_a_link_signed_with_another_secret_is_invalid(mailed):
    app, record, _, _ = mailed()
    forged = links.Signer("another-secret-of-at-least-32-characters").sign(
        links.Link("stepfunction", "manual_steps", record["id"], ALICE, "SUCCEED", "n", 2**40)
    )
    assert "not valid" in app.get(f"/stepfunction/links/{forged}", status=404).text


def test_an_expired_link_says_so(mailed, workflows):
    app, record, execution, mails = mailed(**{"stepfunction.link_ttl": "1"})
    url = mails[ALICE]["Approve"]
    page = wait_for(lambda: app.get(path_of(url), expect_errors=True).status_code == 410 or None)
    page = app.get(path_of(url), status=410)
    assert "This link has expired" in page.text and "It expired " in page.text
    assert "stepfunction/dashboard/?bucket=stepfunction" in page.text
    assert workflows.status(execution) == "RUNNING"


def test_a_link_never_outlives_the_steps_deadline(mailed):
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    app, _, _, mails = mailed({"deadline": deadline})
    assert "expired" in app.get(path_of(mails[ALICE]["Approve"]), status=410).text


def test_a_link_after_an_answer_on_the_dashboard(mailed, workflows):
    app, record, execution, mails = mailed()
    app.post_json(answer_url(record["id"]), {"answer": "FAIL"}, headers=REVIEWER)
    page = app.get(path_of(mails[ALICE]["Approve"]), status=410)
    reviewer = user_id(app, REVIEWER)
    assert "Already answered elsewhere" in page.text and "This link was already" not in page.text
    # The name the reviewer signed in with (people.py), never the principal's hash.
    assert "This step was rejected by reviewer less than a minute ago" in page.text
    assert reviewer not in page.text and reviewer.split(":")[1] not in page.text
    assert workflows.wait_done(execution)["status"] == "FAILED"


def test_a_link_after_the_step_timed_out(mailed, workflows):
    app, record, execution, mails = mailed(timeout=1)
    assert workflows.wait_done(execution)["error"] == "States.Timeout"
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=410)
    assert record_of(app, record["id"])["status"] == "TIMED_OUT"
    page = app.get(path_of(mails[ALICE]["Approve"]), status=410)
    assert "timed out" in page.text


def test_a_link_of_a_deleted_or_recreated_record(mailed, mailbox, callback):
    app, record, _, mails = mailed()
    url = mails[ALICE]["Approve"]
    app.delete(f"{STEPS}/records/{record['id']}", headers=ADMIN)
    assert "no longer exists" in app.get(path_of(url), status=410).text

    token, _ = callback()
    post_step(app, {"reviewer": ALICE, "taskToken": token}, record_id=record["id"])
    mailbox.wait(2, ALICE)
    assert "no longer exists" in app.get(path_of(url), status=410).text


def test_a_link_of_a_reviewer_the_author_removed(mailed, workflows):
    app, record, execution, mails = mailed()
    app.patch_json(f"{STEPS}/records/{record['id']}", {"data": {"reviewer": BOB}}, headers=ADMIN)
    page = app.get(path_of(mails[ALICE]["Approve"]), status=403)
    assert "alice@example.com is no longer a reviewer" in page.text
    app.get(path_of(mails[BOB]["Approve"]), status=200)
    assert workflows.status(execution) == "RUNNING"


# Cross-site posting and forged forms.


def test_a_post_without_the_pages_cookie_answers_nothing(mailed, workflows):
    app, record, execution, mails = mailed()
    url = path_of(mails[ALICE]["Approve"])
    csrf = app.get(url).forms[0]["csrf"].value
    cases = [
        ({"csrf": csrf}, {"Origin": "https://evil.example"}),
        ({"csrf": csrf}, {"Sec-Fetch-Site": "cross-site"}),
        ({"csrf": "guessed"}, {}),
        ({}, {}),
    ]
    for form, headers in cases:
        page = app.post(url, form, headers=headers, status=403)
        assert "did not come from the link" in page.text
    app.reset()  # no cookie at all
    app.post(url, {"csrf": csrf}, status=403)
    assert app.post_json(url, {"answer": "SUCCEED"}, status=415).content_type == "text/html"
    assert workflows.status(execution) == "RUNNING"
    assert record_of(app, record["id"]) == record


def test_links_are_off_without_a_secret(app_factory, mailbox, callback, start_worker):
    settings = mail_settings(mailbox)
    del settings["stepfunction.link_secret"]
    app = app_factory(**settings)
    setup_steps(app)
    token, _ = callback()
    start_worker(app)
    post_step(app, {"reviewer": ALICE, "taskToken": token})
    (message,) = mailbox.wait(1, ALICE)
    assert set(links_of(message)) == {"dashboard"}
    app.get("/stepfunction/links/anything", status=404)


def test_a_hostile_step_renders_as_text(mailed):
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    app, _, _, mails = mailed({"subject": hostile}, payload={"note": hostile})
    page = app.get(path_of(mails[ALICE]["Approve"]))
    assert "<script>" not in page.text and "<img" not in page.text
    assert "&lt;script&gt;" in page.text


# In a real browser, from the mail to the workflow.


@pytest.mark.parametrize("backend", ["memory"])
def test_a_reviewer_approves_from_the_mail_in_chromium(
    app_factory, mailbox, callback, workflows, start_worker
):
    port = free_port()
    public_url = f"http://127.0.0.1:{port}/v1/"
    app = app_factory(**mail_settings(mailbox, public_url=public_url))
    setup_steps(app)
    server = StopableWSGIServer.create(app.app, host="127.0.0.1", port=port)
    assert server.wait()
    try:
        token, execution = callback({"amount": 12})
        start_worker(app)
        record = post_step(app, {"subject": "Pay", "reviewer": ALICE, "taskToken": token})
        url = links_of(mailbox.wait(1, ALICE)[0])["Approve"]
        assert url.startswith(public_url)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page()
            page.goto(url)
            expect(page.get_by_role("heading")).to_have_text("Approve this step?")
            page.screenshot(path=SCREENSHOT)  # for a person to look at; nothing reads it
            assert workflows.status(execution) == "RUNNING"

            page.get_by_role("button", name="Approve").click()
            expect(page.get_by_role("heading")).to_have_text("Approved. Thank you")
            assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
            assert record_of(app, record["id"])["answer"]["by"] == f"link:{ALICE}"

            page.goto(url)
            expect(page.get_by_text("You approved this step")).to_be_visible()
            expect(page.get_by_role("heading")).to_have_text("This link was already used")
            browser.close()
    finally:
        server.shutdown()


ATTACK = """<!doctype html><html><body>
<form id="f" method="POST" action="{url}"><input name="csrf" value="guess"></form>
<script>document.getElementById("f").submit();</script></body></html>"""


@pytest.mark.parametrize("backend", ["memory"])
def test_a_cross_site_form_in_chromium_answers_nothing(mailed, workflows):
    app, record, execution, mails = mailed()
    path = "/v1" + path_of(mails[ALICE]["Approve"])

    with cross_site(app, lambda kinto: ATTACK.format(url=kinto + path)) as (kinto, evil):
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page()
            page.goto(kinto + path)  # the reviewer opened the link before: the cookie is there
            with page.expect_response(lambda r: r.url == kinto + path) as posted:
                page.goto(evil)
            assert posted.value.status == 403
            browser.close()
    assert workflows.status(execution) == "RUNNING"
    assert record_of(app, record["id"]) == record


def test_the_secret_and_the_links_never_reach_logs(mailed, caplog):
    app, _, _, mails = mailed()
    confirm(app, mails[ALICE]["Approve"])
    tokens = [
        url.rsplit("/", 1)[1] for m in mails.values() for url in m.values() if "/links/" in url
    ]
    assert tokens and LINK_SECRET not in caplog.text
    for token in tokens:
        assert token not in caplog.text


def test_a_step_that_cant_be_answered_gives_a_page_not_json(app_factory, mailbox, start_worker):
    app = app_factory(**mail_settings(mailbox))
    setup_steps(app)
    start_worker(app)
    record = post_step(app, {"subject": "No task", "reviewer": ALICE})  # no token, no activity
    url = links_of(mailbox.wait(1, ALICE)[0])["Approve"]
    page = confirm(app, url, status=400)
    assert page.content_type == "text/html"
    assert "This answer could not be sent" in page.text
    assert "neither a taskToken nor an activityArn" in page.text
    assert record_of(app, record["id"]) == record
