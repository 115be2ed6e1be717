"""Webhook signatures and settings: pure functions, no Kinto."""

import base64
import datetime
import hashlib
import hmac
import re

import pytest
import standardwebhooks
from pyramid.exceptions import ConfigurationError
from webob.headers import EnvironHeaders

from stepfunction import webhooks
from stepfunction.webhook_signatures import Unverified, secret_problem, verify


SECRET = "a-jira-secret-of-some-length"
OLD_SECRET = "the-secret-before-the-rotation"
WHSEC = "whsec_" + base64.b64encode(b"standard-webhooks-key-24b").decode()
OLD_WHSEC = "whsec_" + base64.b64encode(b"an-older-standard-key-32-bytes!!").decode()
BODY = b'{"webhookEvent": "jira:issue_created", "issue": {"key": "OPS-1"}}'
MACHINE = "arn:aws:states:us-west-2:123456789012:stateMachine:Triage"


def headers(**values):
    """A case-insensitive mapping, as WebOb's request headers."""
    environ = {"HTTP_" + k.upper(): v for k, v in values.items()}
    return EnvironHeaders(environ)


def hub(secret, body, method="sha256"):
    return f"{method}={hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()}"


def standard(secret, body, msg_id="msg_1", at=None):
    at = at or datetime.datetime.now(datetime.UTC)
    signature = standardwebhooks.Webhook(secret).sign(msg_id, at, body.decode())
    return headers(
        webhook_id=msg_id,
        webhook_timestamp=str(int(at.timestamp())),
        webhook_signature=signature,
    )


def refusal(scheme, secrets, given, body=BODY):
    with pytest.raises(Unverified) as caught:
        verify(scheme, secrets, given, body)
    return caught.value.reason


@pytest.mark.parametrize("method", ["sha256", "sha1", "sha512"])
def test_websub_verifies_the_body_signed_with_the_secret(method):
    verify("websub", (SECRET,), headers(x_hub_signature=hub(SECRET, BODY, method)), BODY)


def test_websub_refusals():
    signed = headers(x_hub_signature=hub(SECRET, BODY))
    assert "matches none" in refusal("websub", (SECRET,), signed, BODY + b" ")
    assert "matches none" in refusal("websub", ("another-secret-entirely",), signed)
    assert refusal("websub", (SECRET,), headers()) == "no X-Hub-Signature header"
    assert "sha256=<hex>" in refusal("websub", (SECRET,), headers(x_hub_signature="md5=00"))
    assert "sha256=<hex>" in refusal("websub", (SECRET,), headers(x_hub_signature="sha256=xyz"))
    assert "sha256=<hex>" in refusal("websub", (SECRET,), headers(x_hub_signature="sha256="))
    # GitHub's header is not WebSub's.
    github = headers(x_hub_signature_256=hub(SECRET, BODY))
    assert refusal("websub", (SECRET,), github) == "no X-Hub-Signature header"


def test_any_configured_secret_verifies_a_rotation():
    for secret in (OLD_SECRET, SECRET):
        verify("websub", (OLD_SECRET, SECRET), headers(x_hub_signature=hub(secret, BODY)), BODY)
        github = headers(x_hub_signature_256=hub(secret, BODY))
        verify("github", (SECRET, OLD_SECRET), github, BODY)
    for secret in (OLD_WHSEC, WHSEC):
        verify("standard", (WHSEC, OLD_WHSEC), standard(secret, BODY), BODY)
    # Dropped from the settings: refused.
    old = headers(x_hub_signature=hub(OLD_SECRET, BODY))
    assert "matches none" in refusal("websub", (SECRET,), old)


def test_github_verifies_its_sha256_header_only():
    verify("github", (SECRET,), headers(x_hub_signature_256=hub(SECRET, BODY).upper()), BODY)
    signed = headers(x_hub_signature_256=hub(SECRET, BODY))
    assert "matches none" in refusal("github", (SECRET,), signed, BODY.replace(b"1", b"2"))
    assert "matches none" in refusal("github", ("another-secret-entirely",), signed)
    legacy = headers(x_hub_signature=hub(SECRET, BODY, "sha1"))
    assert refusal("github", (SECRET,), legacy) == "no X-Hub-Signature-256 header"
    sha1 = headers(x_hub_signature_256=hub(SECRET, BODY, "sha1"))
    assert "sha256=<hex>" in refusal("github", (SECRET,), sha1)


def test_standard_webhooks():
    verify("standard", (WHSEC,), standard(WHSEC, BODY), BODY)
    assert "matches none" in refusal("standard", (WHSEC,), standard(WHSEC, BODY), BODY + b"\n")
    assert "matches none" in refusal("standard", (OLD_WHSEC,), standard(WHSEC, BODY))
    signed = standard(WHSEC, BODY)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        kept = {k.lower(): v for k, v in signed.items() if k.lower() != name}
        partial = headers(**{k.replace("-", "_"): v for k, v in kept.items()})
        assert refusal("standard", (WHSEC,), partial) == f"no {name} header"
    # The id is signed: another id with the same signature is refused.
    other_id = headers(
        webhook_id="msg_2",
        webhook_timestamp=signed["webhook-timestamp"],
        webhook_signature=signed["webhook-signature"],
    )
    assert "matches none" in refusal("standard", (WHSEC,), other_id)
    now = str(int(datetime.datetime.now(datetime.UTC).timestamp()))
    malformed = headers(webhook_id="m", webhook_timestamp=now, webhook_signature="v1")
    assert "v1,<base64>" in refusal("standard", (WHSEC,), malformed)


@pytest.mark.parametrize("minutes", [-6, 6])
def test_standard_refuses_timestamps_more_than_5_minutes_off(minutes):
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
    assert "5 minutes off" in refusal("standard", (WHSEC,), standard(WHSEC, BODY, at=at))
    within = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes * 0.7)
    verify("standard", (WHSEC,), standard(WHSEC, BODY, at=within), BODY)


def test_standard_refuses_a_body_that_is_not_utf8():
    body = b'{"a": "\xff"}'
    signed = standard(WHSEC, b"{}")
    assert "not UTF-8" in refusal("standard", (WHSEC,), signed, body)


def test_refusals_never_quote_the_secret_or_the_signature():
    signature = hub(SECRET, BODY)
    reasons = [
        refusal("websub", (SECRET,), headers(x_hub_signature=signature), b"x"),
        refusal("websub", (SECRET,), headers(x_hub_signature=signature + "zz")),
        refusal("standard", (WHSEC,), standard(WHSEC, BODY), b"x"),
    ]
    for reason in reasons:
        assert SECRET not in reason and signature[7:] not in reason and WHSEC not in reason


def test_secret_problems():
    assert secret_problem("websub", SECRET) is None
    assert "16 characters" in secret_problem("github", "short")
    assert secret_problem("standard", WHSEC) is None
    assert "whsec_" in secret_problem("standard", SECRET)
    assert "base64" in secret_problem("standard", "whsec_not base64!")
    short = "whsec_" + base64.b64encode(b"too-short").decode()
    assert "9 bytes" in secret_problem("standard", short)


# --- Settings -------------------------------------------------------------------------------


def webhook_settings(name="jira", **fields):
    values = {"state_machine": MACHINE, "secret": SECRET, "scheme": "websub", **fields}
    return {f"stepfunction.webhook.{name}.{k}": v for k, v in values.items() if v is not None}


def test_settings_of_a_webhook():
    settings = {
        **webhook_settings(
            secret=f" {OLD_SECRET}  {SECRET} ",
            delivery_header="X-Atlassian-Webhook-Identifier",
            max_bytes="2048",
        ),
        **webhook_settings("gh", scheme="github"),
        **webhook_settings("std", scheme="standard", secret=WHSEC),
        "stepfunction.webhooks": "not ours",
    }
    found = webhooks.from_settings(settings)
    assert sorted(found) == ["gh", "jira", "std"]
    jira = found["jira"]
    assert jira.secrets == (OLD_SECRET, SECRET)
    assert (jira.delivery_header, jira.max_bytes) == ("X-Atlassian-Webhook-Identifier", 2048)
    assert jira.state_machine == MACHINE and jira.started_by == "webhook:jira"
    assert (found["gh"].delivery_header, found["gh"].max_bytes) == ("X-GitHub-Delivery", 2**20)
    assert found["std"].delivery_header == "webhook-id"
    assert webhooks.from_settings(webhook_settings()).get("jira").delivery_header is None
    for webhook in found.values():  # never in a repr (logs, tracebacks)
        assert SECRET not in repr(webhook) and WHSEC not in repr(webhook)


@pytest.mark.parametrize(
    "settings, key, words",
    [
        (webhook_settings(secret=None), "jira.secret", "missing"),
        (webhook_settings(scheme=None), "jira.scheme", "missing"),
        (webhook_settings(state_machine=None), "jira.state_machine", "missing"),
        (webhook_settings(state_machine="arn:aws:states:us-west-2:1:activity:A"), "", "not a"),
        (webhook_settings(scheme="hmac"), "jira.scheme", "websub, github, standard"),
        (webhook_settings(secret=f"{SECRET} short"), "jira.secret", "number 2 is shorter"),
        (webhook_settings(scheme="standard"), "jira.secret", "whsec_"),
        (webhook_settings(max_bytes="0"), "jira.max_bytes", "at least 1"),
        (webhook_settings(max_bytes="1MB"), "jira.max_bytes", "at least 1"),
        (webhook_settings(delivery_header="X Id"), "jira.delivery_header", "header name"),
        (webhook_settings(name="jira_issues"), "jira_issues.", "name"),
        (webhook_settings(name="a" * 33), "", "1 to 32"),
        ({"stepfunction.webhook.jira.secrets": SECRET}, "jira.secrets", "unknown"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_key(settings, key, words):
    with pytest.raises(ConfigurationError) as caught:
        webhooks.from_settings(settings)
    message = str(caught.value)
    assert message.startswith("stepfunction.webhook.") and key in message and words in message
    assert SECRET not in message and WHSEC not in message


# --- Delivery ids ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, signed",
    [
        ({}, True),  # websub without a header: the id is the body's digest
        ({"delivery_header": "X-Atlassian-Webhook-Identifier"}, False),
        ({"scheme": "github"}, False),
        ({"scheme": "github", "delivery_header": "webhook-id"}, False),
        ({"scheme": "standard", "secret": WHSEC}, True),
        ({"scheme": "standard", "secret": WHSEC, "delivery_header": "Webhook-Id"}, True),
        ({"scheme": "standard", "secret": WHSEC, "delivery_header": "X-Request-Id"}, False),
    ],
)
def test_which_delivery_ids_are_signed(fields, signed):
    assert webhooks.from_settings(webhook_settings(**fields))["jira"].signs_delivery_id is signed


VALID_NAME = re.compile(r"[0-9A-Za-z_-]{1,80}")


def test_record_ids_are_execution_names_and_never_collide():
    jira = webhooks.from_settings(webhook_settings())["jira"]
    ids = {
        delivery: jira.record_id(delivery)
        for delivery in (
            "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            "_leading",
            "with space",
            "x" * 75,
            "x" * 76,
            "ünïcode",
            "body-" + "0" * 64,
        )
    }
    assert ids["72d3162e-cc78-11e3-81ab-4c9367dc0958"] == (
        "jira_72d3162e-cc78-11e3-81ab-4c9367dc0958"
    )
    assert ids["msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"] == "jira_msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert ids["x" * 75] == "jira_" + "x" * 75
    for delivery in ("_leading", "with space", "x" * 76, "ünïcode"):
        assert ids[delivery].startswith("jira__")
    assert len(set(ids.values())) == len(ids)
    assert all(VALID_NAME.fullmatch(i) for i in ids.values())
    # Another webhook's ids differ, even where names and ids could run together.
    jira_a = webhooks.from_settings(webhook_settings("jira-a"))["jira-a"]
    assert jira_a.record_id("b") != jira.record_id("a-b")
    longest = webhooks.from_settings(webhook_settings("n" * 32))["n" * 32]
    assert VALID_NAME.fullmatch(longest.record_id("d" * 100))


def test_delivery_ids():
    jira = webhooks.from_settings(webhook_settings(delivery_header="X-Delivery"))["jira"]
    assert jira.delivery_id(headers(x_delivery=" 42 "), BODY) == "42"
    assert jira.delivery_id(headers(x_delivery=""), BODY) is None
    assert jira.delivery_id(headers(), BODY) is None
    websub = webhooks.from_settings(webhook_settings())["jira"]
    digest = "body-" + hashlib.sha256(BODY).hexdigest()
    assert websub.delivery_id(headers(x_delivery="42"), BODY) == digest


@pytest.mark.parametrize("value", ["v1", "v1,", "v1,not base64!", "v2,AAAA", "AAAA", "v1a,AAAA"])
def test_standard_names_a_signature_that_is_not_v1_base64(value):
    """Whatever the standardwebhooks release (1.3 reports these as no match)."""
    now = str(int(datetime.datetime.now(datetime.UTC).timestamp()))
    malformed = headers(webhook_id="m", webhook_timestamp=now, webhook_signature=value)
    assert refusal("standard", (WHSEC,), malformed) == "webhook-signature is not v1,<base64>"


def test_standard_takes_the_v1_signature_among_several():
    signed = standard(WHSEC, BODY)
    several = headers(
        webhook_id=signed["webhook-id"],
        webhook_timestamp=signed["webhook-timestamp"],
        webhook_signature="v1a,AAAA " + signed["webhook-signature"],
    )
    verify("standard", (WHSEC,), several, BODY)
