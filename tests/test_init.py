"""Start-up: settings are checked, secrets stay out of logs and database errors."""

import logging

import pytest
import transaction
from kinto.core.storage.exceptions import BackendError
from pyramid.exceptions import ConfigurationError
from sqlalchemy import text

from stepfunction.settings import Settings
from tests.conftest import app_settings, make_app


GOOD_ACTIVITY = "arn:aws:states:us-west-2:123456789012:activity:Review"
MACHINE = "arn:aws:states:us-west-2:123456789012:stateMachine:Approval"
STRONG_SECRET = "Vq3xN8pLk2ZrT7wYb5HcJ0sFmD9gU4eA6oRiK1tQy-_"


@pytest.mark.parametrize(
    "settings,key",
    [
        ({"aws_access_key": "AKIA"}, "aws_secret_key"),
        ({"aws_secret_key": "s3cr3t"}, "aws_access_key"),
        ({"aws_region": "mars"}, "aws_region"),
        ({"aws_endpoint_url": "127.0.0.1:5000"}, "aws_endpoint_url"),
        ({"activities": f"{GOOD_ACTIVITY} ManualStepTest"}, "activities"),
        ({"activities": GOOD_ACTIVITY.replace("activity", "stateMachine")}, "activities"),
        ({"queues": "ManualSteps"}, "queues"),
        ({"pollers_per_activity": "0"}, "pollers_per_activity"),
        ({"pollers_per_activity": "two"}, "pollers_per_activity"),
        ({"heartbeat_seconds": "-5"}, "heartbeat_seconds"),
        ({"sqs_wait_seconds": "21"}, "sqs_wait_seconds"),
        ({"sqs_wait_seconds": "soon"}, "sqs_wait_seconds"),
        ({"bucket": "step function"}, "bucket"),
        ({"collection": "a/b"}, "collection"),
        ({"collections": "stepfunction"}, "collections"),
        ({"collections": "a/b/c"}, "collections"),
        ({"fetch_activities": "ManualStep*"}, "fetch_activities"),
        ({"stop_seconds": "0"}, "stop_seconds"),
        ({"public_url": "kinto.example.com/v1/"}, "public_url"),
        ({"link_ttl": "0"}, "link_ttl"),
        ({"remind_every": "often"}, "remind_every"),
        ({"remind_max": "-1"}, "remind_max"),
        ({"link_secret": "x" * 31}, "link_secret"),
        ({"state_machines": "Approval*"}, "state_machines"),
        ({"executions": "executions"}, "executions"),
        ({"executions": "stepfunction/manual_steps"}, "executions"),
        ({"status_queues": "status"}, "status_queues"),
        ({"reconcile_seconds": "-1"}, "reconcile_seconds"),
        ({"escalate_after": "0"}, "escalate_after"),
        ({"escalate_after": "later"}, "escalate_after"),
        ({"escalate_to": "ops@example.com system.Authenticated"}, "escalate_to"),
        ({"escalate_to": "not an address"}, "escalate_to"),
    ],
)
def test_malformed_setting_stops_start_up(settings, key):
    with pytest.raises(ConfigurationError, match=f"stepfunction.{key}"):
        Settings.from_settings({f"stepfunction.{k}": v for k, v in settings.items()})


def test_mail_needs_a_public_url_for_its_links():
    with pytest.raises(ConfigurationError, match="stepfunction.public_url"):
        Settings.from_settings({"mail.default_sender": "steps@example.com"})
    settings = Settings.from_settings(
        {
            "mail.default_sender": "steps@example.com",
            "stepfunction.public_url": "https://kinto.example.com/v1",
            "stepfunction.link_secret": STRONG_SECRET,
        }
    )
    assert settings.mail_enabled and settings.links_enabled
    assert settings.public_url == "https://kinto.example.com/v1/"
    assert settings.link_ttl == 7 * 24 * 3600 and settings.remind_every is None
    assert STRONG_SECRET not in repr(settings)
    assert not Settings.from_settings({}).mail_enabled


def test_executions_settings():
    defaults = Settings.from_settings({})
    assert defaults.state_machines == () and not defaults.may_start(MACHINE)
    assert defaults.executions == ("stepfunction", "executions")
    assert defaults.status_queues == () and defaults.reconcile_seconds == 300
    assert not defaults.mail_ended
    settings = Settings.from_settings(
        {
            "stepfunction.state_machines": MACHINE.replace("Approval", "Appr*"),
            "stepfunction.executions": "ops/runs",
            "stepfunction.status_queues": "http://localhost:5000/123456789012/status",
            "stepfunction.reconcile_seconds": "0",
            "stepfunction.mail_ended": "true",
        }
    )
    assert settings.may_start(MACHINE)
    assert not settings.may_start(MACHINE.replace("Approval", "Payment"))
    assert settings.holds_executions("ops", "runs") and not settings.holds_executions("ops", "x")
    assert settings.reconcile_seconds == 0 and settings.mail_ended
    assert settings.worker_configured


def test_escalation_settings():
    defaults = Settings.from_settings({})
    assert defaults.escalate_after is None and defaults.escalate_to == ()
    settings = Settings.from_settings(
        {
            "stepfunction.escalate_after": "3600",
            "stepfunction.escalate_to": "ops@example.com\naccount:boss",
        }
    )
    assert settings.escalate_after == 3600.0
    assert settings.escalate_to == ("ops@example.com", "account:boss")


def test_defaults_and_parsing():
    settings = Settings.from_settings(
        {
            "stepfunction.activities": f"{GOOD_ACTIVITY}\n{GOOD_ACTIVITY}2",
            "stepfunction.pollers_per_activity": "3",
            "stepfunction.heartbeat_seconds": "30",
            "stepfunction.worker_in_process": "true",
        }
    )
    assert settings.activities == (GOOD_ACTIVITY, GOOD_ACTIVITY + "2")
    assert (settings.pollers_per_activity, settings.heartbeat_seconds) == (3, 30.0)
    assert (settings.bucket, settings.collection) == ("stepfunction", "manual_steps")
    assert settings.worker_in_process and settings.worker_configured
    assert settings.aws_region is None and settings.aws_endpoint_url is None
    assert settings.collections == (("stepfunction", "manual_steps"),)
    assert not settings.may_fetch(GOOD_ACTIVITY)


def test_steps_collections_and_fetched_activities():
    settings = Settings.from_settings(
        {
            "stepfunction.collections": "team/steps other/steps",
            "stepfunction.fetch_activities": "arn:aws:states:us-west-2:123456789012:activity:R*",
            "stepfunction.activities": GOOD_ACTIVITY + "2",
        }
    )
    assert settings.holds_steps("stepfunction", "manual_steps")  # the worker's, always
    assert settings.holds_steps("team", "steps") and settings.holds_steps("other", "steps")
    assert not settings.holds_steps("team", "other")
    assert settings.may_fetch(GOOD_ACTIVITY)
    assert not settings.may_fetch(GOOD_ACTIVITY + "2")  # the worker polls it
    assert not settings.may_fetch(GOOD_ACTIVITY.replace("Review", "Payment"))


def test_secret_key_is_not_in_the_settings_repr():
    settings = Settings.from_settings(
        {"stepfunction.aws_access_key": "AKIAEXAMPLE", "stepfunction.aws_secret_key": "s3cr3t"}
    )
    assert "s3cr3t" not in repr(settings)


def test_malformed_setting_stops_the_app(emulator):
    with pytest.raises(ConfigurationError, match="stepfunction.aws_region"):
        make_app(app_settings("memory", emulator, **{"stepfunction.aws_region": "nowhere"}))


def test_start_up_log_names_no_secret(emulator, caplog):
    caplog.set_level(logging.INFO, logger="stepfunction")
    make_app(app_settings("memory", emulator, **{"stepfunction.aws_secret_key": "s3cr3t-k3y"}))
    assert "stepfunction enabled" in caplog.text
    assert "s3cr3t-k3y" not in caplog.text


@pytest.mark.parametrize("backend", ["postgresql"])
def test_database_errors_do_not_log_parameters(app, caplog):
    """Kinto logs failed statements; a record's task token must not be in them."""
    token = "AAAAKgAAAAIAAAAAAAAAA-secret-task-token"
    client = app.app.registry.storage.client
    with pytest.raises(BackendError), transaction.manager:
        with client.connect() as session:
            session.execute(text("SELECT :token, 1 / 0"), {"token": token})
    assert "parameters hidden" in caplog.text
    assert token not in caplog.text
