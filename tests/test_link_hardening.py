"""Issue 13, finding 7: links resume the execution their record names, or nothing.

Fetched tasks, guessable secrets, link tokens in logs, revoked addresses, odd form bodies,
redirects and framing: each abused, on both backends where a backend is involved.
"""

import configparser
import io
import logging
import pathlib
import secrets
import time

import kinto.core
import pytest
from logging_color_formatter import ColorFormatter
from pyramid.exceptions import ConfigurationError

from stepfunction import link_form, link_secret, links, log_redaction
from stepfunction.schema import MAX_CAUSE_CHARS
from stepfunction.settings import Settings
from stepfunction.testing.mailbox import links_of
from tests import conftest
from tests.conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    answer_url,
    app_settings,
    mail_settings,
    make_app,
    notice_of,
    post_step,
    stored_token,
    user_id,
)
from tests.test_links import ALICE, BOB, confirm, path_of, record_of, setup_steps


CONFIG_INI = pathlib.Path(__file__).parent.parent / "config.ini"


def step_and_links(app, mailbox, data, address=ALICE):
    """Post a step for ``address`` (and Bob); returns (record, its ACL, the address's links)."""
    record = post_step(app, {"subject": "Pay invoice 42", "reviewer": [address, BOB], **data})
    urls = links_of(mailbox.wait(1, address)[0])
    return record, conftest.permissions_of(app, record["id"]), urls


def signed_links(app, record_id, address):
    """``{"Approve": url, "Reject": url}``: links signed with the server's secret for the
    step's current notice, as a mail would carry them."""
    registry = app.app.registry
    nonce = notice_of(app, record_id)["nonce"]
    urls = {}
    for label, answer in (("Approve", "SUCCEED"), ("Reject", "FAIL")):
        link = links.Link(
            "stepfunction",
            "manual_steps",
            record_id,
            address,
            answer,
            nonce,
            int(time.time()) + 3600,
        )
        token = registry.stepfunction_signer.sign(link)
        urls[label] = "http://localhost/v1" + links.PATH.format(token=token)
    return urls


def unchanged(app, record, acl):
    assert record_of(app, record["id"]) == record
    assert conftest.permissions_of(app, record["id"]) == acl


# A link answers the execution its record names, or nothing.


def test_finding_7_a_link_never_answers_a_task_fetched_from_the_activity(
    app_factory, mailbox, workflows, emulator, start_worker
):
    """Two executions wait on one activity; the record names the second. GetActivityTask
    would hand out the first one's task: the link refuses, and sends nothing at all."""
    app = app_factory(**mail_settings(mailbox))
    setup_steps(app)
    start_worker(app)
    activity = workflows.activity()
    machine = workflows.activity_machine(activity)
    first, second = workflows.start(machine, {"n": 1}), workflows.start(machine, {"n": 2})
    for execution in (first, second):
        workflows.wait_scheduled(execution)
    record = post_step(
        app,
        {"subject": "Pay", "reviewer": [ALICE], "activityArn": activity, "executionArn": second},
    )
    acl = conftest.permissions_of(app, record["id"])
    # Its mail carries no link that could not answer, only the dashboard's.
    assert set(links_of(mailbox.wait(1, ALICE)[0])) == {"dashboard"}
    # A link signed for it all the same (as an earlier version mailed them) refuses.
    urls = signed_links(app, record["id"], ALICE)
    emulator.reset_calls()

    for url in (urls["Approve"], urls["Reject"]):
        page = app.get(path_of(url), status=409)
        assert page.content_type == "text/html"
        assert "This step cannot be answered by a link" in page.text
        assert "stepfunction/dashboard/?bucket=stepfunction" in page.text
        assert "<form" not in page.text
        app.set_cookie("stepfunction_link", "A" * 32)
        page = app.post(path_of(url), {"csrf": "A" * 32}, status=409)
        assert "cannot be answered by a link" in page.text
    assert "GetActivityTask" not in emulator.calls
    assert workflows.status(first) == workflows.status(second) == "RUNNING"
    assert stored_token(app, record["id"]) is None
    unchanged(app, record, acl)

    # An answer on the API fetched a task (the first execution's) and could not send it: the
    # record now holds a token that is not its execution's. Links still refuse.
    emulator.inject_fault("SendTaskSuccess", count=20)  # more than boto3's retries
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=503)
    assert stored_token(app, record["id"]) is not None
    emulator.reset_calls()
    for url in (urls["Approve"], urls["Reject"]):
        assert "cannot be answered by a link" in app.get(path_of(url), status=409).text
    assert not {"SendTaskSuccess", "SendTaskFailure"} & set(emulator.calls)
    assert workflows.status(first) == workflows.status(second) == "RUNNING"
    assert conftest.permissions_of(app, record["id"]) == acl


def test_finding_7_a_link_of_a_posted_token_still_answers_its_execution(
    app_factory, mailbox, callback, workflows, start_worker
):
    """The happy path beside it: a token given with the step is its execution's."""
    app = app_factory(**mail_settings(mailbox))
    setup_steps(app)
    start_worker(app)
    token, execution = callback({"amount": 12})
    record, acl, urls = step_and_links(app, mailbox, {"taskToken": token})
    confirm(app, urls["Approve"])
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    assert record_of(app, record["id"])["answer"]["by"] == f"link:{ALICE}"
    assert conftest.permissions_of(app, record["id"]) == acl


# The secret: the sample and guessable ones sign nothing that leaves this machine.


def config_ini():
    parser = configparser.RawConfigParser()
    parser.read(CONFIG_INI)
    return parser["app:main"]


GUESSABLE = [
    "a" * 32,
    "ab" * 16,
    "0123456789abcdef" * 2,
    "abcdefghijklmnopqrstuvwxyz012345",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
    "password" * 4,
    "Password1!" * 4,
]
LOOPBACK = [
    "http://127.0.0.1:8888/v1/",
    "http://127.4.5.6/v1/",
    "http://localhost:8888/v1/",
    "http://LOCALHOST/v1/",
    "http://[::1]:8888/v1/",
]
PUBLIC = [
    "https://kinto.example.com/v1/",
    "http://localhost.example.com/v1/",
    "http://127.0.0.1.nip.io/v1/",
    "http://0.0.0.0:8888/v1/",
    "http://10.0.0.1/v1/",
    None,
]


def from_settings(secret, public_url):
    settings = {"stepfunction.link_secret": secret}
    if public_url:
        settings.update({"stepfunction.public_url": public_url})
    return Settings.from_settings(settings)


@pytest.mark.parametrize("public_url", PUBLIC)
def test_finding_7_start_up_refuses_the_sample_secret_unless_on_loopback(public_url):
    sample = config_ini()["stepfunction.link_secret"]
    assert sample in link_secret.SAMPLE_SECRETS
    with pytest.raises(ConfigurationError, match="stepfunction.link_secret: this is config.ini"):
        from_settings(sample, public_url)
    for url in LOOPBACK + [config_ini()["stepfunction.public_url"]]:
        assert from_settings(sample, url).link_secret == sample  # make serve still starts


@pytest.mark.parametrize("secret", GUESSABLE)
def test_finding_7_start_up_refuses_guessable_secrets_unless_on_loopback(secret):
    assert link_secret.estimated_bits(secret) < link_secret.MIN_BITS
    for url in PUBLIC:
        with pytest.raises(ConfigurationError, match="stepfunction.link_secret: too guessable"):
            from_settings(secret, url)
    for url in LOOPBACK:
        assert from_settings(secret, url).links_enabled is False  # no mail: off, but valid
    with pytest.raises(ConfigurationError) as refused:
        from_settings(secret, PUBLIC[0])
    assert secret not in str(refused.value)


def test_finding_7_generated_secrets_are_accepted():
    for _ in range(2000):
        for secret in (secrets.token_urlsafe(32), secrets.token_hex(32)):
            assert link_secret.estimated_bits(secret) >= 180
            assert link_secret.problem(secret, PUBLIC[0]) is None
    assert link_secret.problem("", PUBLIC[0]) is None  # no secret: no links
    assert "32 characters" in link_secret.problem(secrets.token_urlsafe(23), LOOPBACK[0])


@pytest.mark.parametrize("url", LOOPBACK)
def test_finding_7_loopback_addresses(url):
    assert link_secret.is_loopback(url)


@pytest.mark.parametrize("url", PUBLIC)
def test_finding_7_addresses_that_are_not_loopback(url):
    assert not link_secret.is_loopback(url)


def test_finding_7_kinto_does_not_start_with_the_sample_secret(emulator, mailbox):
    settings = mail_settings(mailbox, public_url="https://kinto.example.com/v1/")
    settings["stepfunction.link_secret"] = config_ini()["stepfunction.link_secret"]
    with pytest.raises(ConfigurationError, match="stepfunction.link_secret"):
        make_app(app_settings("memory", emulator, **settings))


# Link tokens reach no log line, under each of Kinto's formatters.


FORMATTERS = {
    "classic": lambda: logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"),
    "color": ColorFormatter,
    "json": kinto.core.JsonLogFormatter,
}


@pytest.fixture(params=[logging.INFO, logging.DEBUG], ids=["info", "debug"])
def kinto_logs(request):
    """``kinto_logs(formatter)``: a handler on the root logger, as Kinto's .ini sets one, with
    ``request.summary`` at INFO (Kinto's default) or DEBUG (headers and bodies); returns the
    text it wrote."""
    summary = logging.getLogger("request.summary")
    level, root = summary.level, logging.getLogger()
    handlers = []

    def install(formatter):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        root.addHandler(handler)
        handlers.append(handler)
        summary.setLevel(request.param)
        return stream

    yield install
    summary.setLevel(level)
    for handler in handlers:
        root.removeHandler(handler)


@pytest.mark.parametrize("name", FORMATTERS)
def test_finding_7_link_tokens_reach_no_log_line(
    app_factory, mailbox, callback, workflows, start_worker, kinto_logs, name
):
    app = app_factory(**mail_settings(mailbox))
    setup_steps(app)
    start_worker(app)
    token, execution = callback({"amount": 12})
    record, acl, urls = step_and_links(app, mailbox, {"taskToken": token})
    stream = kinto_logs(FORMATTERS[name]())

    reject = path_of(urls["Reject"])
    app.get(reject + "?utm_source=mail")
    app.post(reject, "csrf=x&csrf=y", content_type=link_form.FORM_TYPE, status=400)
    app.post(reject, {"csrf": "x"}, headers={"Referer": urls["Reject"]}, status=403)
    confirm(app, urls["Approve"])
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    app.get(reject, status=410)

    text = stream.getvalue()
    assert "stepfunction/links/(token)" in text or name == "classic"
    assert "request.summary" in text or name != "json"
    for url in urls.values():
        if "/links/" in url:
            assert url.rsplit("/", 1)[1] not in text
    assert conftest.permissions_of(app, record["id"]) == acl


def test_finding_7_the_error_views_record_is_redacted_too():
    """Kinto's error view logs a failed request's path on the root logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(kinto.core.JsonLogFormatter())
    root = logging.getLogger()
    log_redaction.install()
    root.addHandler(handler)
    try:
        path = "/v1/stepfunction/links/eyJiIjoic3RlcGZ1bmN0aW9uIn0.c2lnbmF0dXJl"
        root.error("failed on %s", path, extra={"path": path, "querystring": {"next": path}})
    finally:
        root.removeHandler(handler)
    assert "eyJiIjoic3RlcGZ1bmN0aW9uIn0" not in stream.getvalue()
    assert "stepfunction/links/(token)" in stream.getvalue()


# A removed address learns nothing of the step.


@pytest.mark.parametrize("close", ["answer", "timeout", "open"])
def test_finding_7_a_removed_address_gets_403_before_anything_about_the_step(
    app_factory, mailbox, callback, workflows, start_worker, close
):
    app = app_factory(**mail_settings(mailbox))
    setup_steps(app)
    start_worker(app)
    token, execution = callback({"amount": 12}, timeout=1 if close == "timeout" else 300)
    record, acl, urls = step_and_links(app, mailbox, {"taskToken": token})
    if close == "answer":
        app.post_json(answer_url(record["id"]), {"answer": "FAIL"}, headers=REVIEWER)
    if close == "timeout":
        assert workflows.wait_done(execution)["error"] == "States.Timeout"
        app.post_json(answer_url(record["id"]), {"answer": "FAIL"}, headers=REVIEWER, status=410)
    path = f"{STEPS}/records/{record['id']}"
    app.patch_json(path, {"data": {"reviewer": [BOB]}}, headers=ADMIN)
    record = record_of(app, record["id"])

    reviewer = user_id(app, REVIEWER)
    app.set_cookie("stepfunction_link", "A" * 32)
    for url in (urls["Approve"], urls["Reject"]):
        for page in (
            app.get(path_of(url), status=403),
            app.post(path_of(url), {"csrf": "A" * 32}, status=403),
        ):
            assert f"{ALICE} is no longer a reviewer of this step." in page.text
            for told in ("FAIL", "SUCCEED", "answered", "timed out", reviewer, "Pay invoice"):
                assert told not in page.text
    if close == "open":
        assert workflows.status(execution) == "RUNNING"
    unchanged(app, record, acl)


# The form's POST: an HTML 4xx page for any body that is not the page's form.


def odd_bodies(csrf):
    form = link_form.FORM_TYPE
    return [
        ("missing fields", b"", form, 403),
        ("no body, no type", b"", "", 403),
        ("a stranger's field only", b"answer=SUCCEED", form, 403),
        ("csrf repeated", f"csrf={csrf}&csrf={csrf}".encode(), form, 400),
        ("reason repeated", f"csrf={csrf}&reason=a&reason=b".encode(), form, 400),
        ("raw bytes not ASCII", f"csrf={csrf}&reason=\xe9t\xe9".encode("latin-1"), form, 400),
        ("escapes not UTF-8", f"csrf={csrf}&reason=%E9t%E9".encode(), form, 400),
        ("csrf not ASCII", b"csrf=%C3%A9t%C3%A9%C3%A9", form, 403),
        ("a NUL in csrf", b"csrf=%00", form, 403),
        ("too many fields", b"&".join(b"f%d=1" % i for i in range(50)), form, 400),
        ("huge", b"csrf=" + b"A" * link_form.MAX_BYTES, form, 413),
        ("latin-1 charset", f"csrf={csrf}".encode(), form + "; charset=latin-1", 415),
        ("JSON", b'{"csrf": "%s"}' % csrf.encode(), "application/json", 415),
        ("text", f"csrf={csrf}".encode(), "text/plain", 415),
        ("no content type", f"csrf={csrf}".encode(), "", 415),
        (
            "multipart",
            b'--b\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n%s\r\n--b--\r\n'
            % csrf.encode(),
            "multipart/form-data; boundary=b",
            415,
        ),
        ("broken multipart", b"--b\r\n\r\n", "multipart/form-data; boundary=b", 415),
        ("broken query", b"=&&==%%%", form, 400),
    ]


def test_finding_7_odd_form_bodies_get_an_html_4xx_page(
    app_factory, mailbox, callback, workflows, start_worker
):
    app = app_factory(**mail_settings(mailbox))
    setup_steps(app)
    start_worker(app)
    token, execution = callback({"amount": 12})
    record, acl, urls = step_and_links(app, mailbox, {"taskToken": token})
    path = path_of(urls["Reject"])
    csrf = app.get(path).forms[0]["csrf"].value

    for name, body, content_type, status in odd_bodies(csrf):
        page = app.post(path, body, content_type=content_type, expect_errors=True)
        assert (page.status_code, page.content_type) == (status, "text/html"), name
        assert page.headers["X-Frame-Options"] == "DENY"
        assert "<h1>" in page.text
        unchanged(app, record, acl)
    assert workflows.status(execution) == "RUNNING"

    confirm(app, urls["Reject"], reason="Wrong amount, \u00e9t\u00e9 \U0001f600")
    described = workflows.wait_done(execution)
    assert described["status"] == "FAILED"
    assert described["cause"] == "Wrong amount, \u00e9t\u00e9 \U0001f600"
    assert conftest.permissions_of(app, record["id"]) == acl


def test_finding_7_the_longest_reason_fits_the_form(
    app_factory, mailbox, callback, workflows, start_worker
):
    """The size limit leaves room for the longest reason, in 4-byte characters."""
    app = app_factory(**mail_settings(mailbox))
    setup_steps(app)
    start_worker(app)
    token, execution = callback({"amount": 12})
    _, _, urls = step_and_links(app, mailbox, {"taskToken": token})
    reason = "\u20ac" * MAX_CAUSE_CHARS  # 3 UTF-8 bytes each, 9 percent-encoded
    confirm(app, urls["Reject"], reason=reason)
    assert workflows.wait_done(execution)["status"] == "FAILED"


# Redirects are relative; no page can be framed.


def test_finding_7_the_dashboards_redirect_ignores_the_host_header(app):
    for host in ("evil.example", "evil.example:443", "127.0.0.1:8888"):
        response = app.get("/stepfunction/dashboard?bucket=b", headers={"Host": host}, status=307)
        assert response.headers["Location"] == "dashboard/?bucket=b"
        assert "evil" not in response.text
        assert response.headers["X-Frame-Options"] == "DENY"


def test_finding_7_no_page_can_be_framed(app_factory, mailbox, callback, start_worker):
    app = app_factory(**mail_settings(mailbox))
    setup_steps(app)
    start_worker(app)
    token, _ = callback({"amount": 12})
    _, _, urls = step_and_links(app, mailbox, {"taskToken": token})
    pages = [
        app.get("/stepfunction/dashboard/"),
        app.get("/stepfunction/dashboard/dashboard.js"),
        app.get("/stepfunction/dashboard/dashboard.css"),
        app.get("/stepfunction/dashboard", status=307),
        app.get(path_of(urls["Approve"])),
        app.get(path_of(urls["Approve"]) + "x", status=404),
        app.post(path_of(urls["Approve"]), {"csrf": "x"}, status=403),
    ]
    for page in pages:
        assert page.headers["X-Frame-Options"] == "DENY", page.request.path
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_finding_7_which_steps_a_link_may_answer():
    fetched = "arn:aws:states:us-west-2:123456789012:activity:Review"
    received = "arn:aws:states:us-west-2:123456789012:activity:Worker"
    settings = Settings.from_settings(
        {"stepfunction.fetch_activities": fetched, "stepfunction.activities": received}
    )
    posted = {"token": "t", "region": "us-west-2"}
    assert links.execution_known(settings, {"activityArn": fetched}, posted)
    assert not links.execution_known(settings, {"activityArn": fetched}, None)
    assert not links.execution_known(settings, {}, {**posted, "fetched": True})
    assert not links.execution_known(settings, {}, {**posted, "sent": "FAIL", "fetched": True})
    assert links.execution_known(settings, {"activityArn": received}, None)  # 409 until received
    assert links.execution_known(settings, {}, None)  # nothing to answer: the answer says so
