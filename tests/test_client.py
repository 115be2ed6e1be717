"""The Step Functions client: ARNs, regions, credentials, and what AWS errors mean."""

import json
import uuid

import botocore.exceptions
import pytest

from stepfunction.boto_clients import pool_connections
from stepfunction.client import (
    Client,
    InvalidAnswer,
    NotStepFunctions,
    TaskGone,
    Unavailable,
    UnknownActivity,
    fingerprint,
    translate,
)
from stepfunction.schema import parse_arn
from stepfunction.settings import Settings
from stepfunction.testing import Workflows
from tests.conftest import ADMIN, REVIEWER, answer_url, post_step


def client_error(code, status=400, retries=0, message="m", request_id="r-1"):
    metadata = {"HTTPStatusCode": status, "RetryAttempts": retries, "RequestId": request_id}
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": metadata}
    return botocore.exceptions.ClientError(response, "SendTaskSuccess")


@pytest.mark.parametrize(
    "error,expected",
    [
        (client_error("TaskTimedOut"), TaskGone),
        (client_error("TaskDoesNotExist"), TaskGone),
        (client_error("InvalidToken"), TaskGone),
        (client_error("ActivityDoesNotExist"), UnknownActivity),
        (client_error("InvalidArn"), UnknownActivity),
        (client_error("InvalidOutput"), InvalidAnswer),
        (client_error("ThrottlingException"), Unavailable),
        (client_error("ServiceUnavailable", 503), Unavailable),
        (client_error("UnrecognizedClientException"), Unavailable),
        # Refused by something that is not Step Functions (no request id): a web page's 404.
        (client_error("404", 404, request_id=None), NotStepFunctions),
        (client_error("502", 502, request_id=None), Unavailable),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), Unavailable),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), Unavailable),
    ],
)
def test_aws_errors_are_translated(error, expected):
    translated = translate(error)
    assert type(translated) is expected
    assert translated.code


@pytest.mark.parametrize(
    "error,maybe_applied",
    [
        (client_error("TaskDoesNotExist"), False),
        (client_error("TaskDoesNotExist", retries=2), True),
        (client_error("ThrottlingException", retries=2), False),
        (client_error("ServiceUnavailable", 503), True),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), True),
    ],
    ids=["gone", "gone-after-retries", "throttled", "server-error", "read-timeout"],
)
def test_a_call_that_may_have_been_applied_says_so(error, maybe_applied):
    assert translate(error).maybe_applied is maybe_applied


def test_translated_messages_name_no_token():
    token = "AAAAKgAAAAIAAAAA-secret-token"
    translated = translate(client_error("InvalidToken", message=f"Invalid token {token}"), token)
    assert token not in str(translated)
    assert fingerprint(token) in str(translated)


def test_parse_arn():
    arn = parse_arn("arn:aws:states:eu-central-1:123456789012:activity:Sign_Off-1.0")
    assert (arn.region, arn.account, arn.kind, arn.name) == (
        "eu-central-1",
        "123456789012",
        "activity",
        "Sign_Off-1.0",
    )
    assert parse_arn("arn:aws-cn:states:cn-north-1:123456789012:stateMachine:M").kind == (
        "stateMachine"
    )
    execution = parse_arn("arn:aws:states:us-west-2:123456789012:execution:Machine:run-1")
    assert (execution.kind, execution.name) == ("execution", "Machine:run-1")
    good = "arn:aws:states:us-west-2:123456789012:activity:A"
    for bad in (
        None,
        42,
        "",
        "ManualStep",
        "arn:aws:lambda:us-west-2:123456789012:function:F",
        good + "\n",
        " " + good,
        good + " ",
    ):
        assert parse_arn(bad) is None


def test_fingerprint_tells_tokens_apart_and_reveals_none():
    token = "AAAAKgAAAAIAAAAAAAAAAbcdefghijklmnop"
    assert token[:8] not in fingerprint(token)
    assert fingerprint(token) == fingerprint(token) != fingerprint(token + "x")
    assert fingerprint(None) == "<none>"


@pytest.mark.parametrize(
    "record,setting,expected",
    [
        (
            {
                "activityArn": "arn:aws:states:eu-west-1:123456789012:activity:A",
                "stateMachineArn": "arn:aws:states:us-east-2:123456789012:stateMachine:M",
            },
            "us-west-2",
            "eu-west-1",
        ),
        (
            {"stateMachineArn": "arn:aws:states:us-east-2:123456789012:stateMachine:M"},
            "us-west-2",
            "us-east-2",
        ),
        ({"taskToken": "t"}, "us-west-2", "us-west-2"),
        ({"taskToken": "t"}, None, None),
    ],
)
def test_region_comes_from_the_record_first(record, setting, expected):
    settings = Settings.from_settings({"stepfunction.aws_region": setting or ""})
    assert Client(settings).region_for(record) == expected


def test_regions_are_those_aws_has():
    """Hostile ARNs name regions that don't exist: refused, and no client is made for them."""
    client = Client(Settings.from_settings({"stepfunction.aws_region": "us-west-2"}))
    for i in range(10_000):
        record = {"activityArn": f"arn:aws:states:us-west-{i}:123456789012:activity:A"}
        if i in (1, 2):
            assert client.region_for(record) == f"us-west-{i}"
        else:
            with pytest.raises(ValueError):
                client.region_for(record)
    assert {"eu-west-1", "cn-north-1", "us-gov-west-1"} <= client.regions


@pytest.mark.parametrize("backend", ["memory"])
def test_answer_reaches_the_region_of_the_activity(app_factory, emulator):
    """The app's region setting is us-west-2; the activity lives in eu-west-1."""
    app = app_factory(**{"stepfunction.fetch_activities": "arn:aws:states:eu-west-1:*"})
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json("/buckets/stepfunction/collections/manual_steps", {}, headers=ADMIN)
    sfn = emulator.client("eu-west-1")
    suffix = uuid.uuid4().hex[:12]
    activity = sfn.create_activity(name=f"EuropeanReview-{suffix}")["activityArn"]
    machine = sfn.create_state_machine(
        name=f"EuropeanMachine-{suffix}",
        definition=json.dumps(
            {"StartAt": "S", "States": {"S": {"Type": "Task", "Resource": activity, "End": True}}}
        ),
        roleArn="arn:aws:iam::123456789012:role/R",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    Workflows(emulator, region="eu-west-1").wait_scheduled(execution)
    record = post_step(app, {"activityArn": activity})

    response = app.post_json(
        answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status="*"
    )

    assert response.status_code == 200, response.json
    described = Workflows(emulator, region="eu-west-1").wait_done(execution)
    assert described["status"] == "SUCCEEDED"


def test_empty_keys_use_the_default_credential_chain(app_factory, monkeypatch, emulator):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-environment")
    app = app_factory(**{"stepfunction.aws_access_key": "", "stepfunction.aws_secret_key": ""})
    client = app.app.registry.stepfunction_client
    assert client.credentials().access_key == "from-environment"


def test_connection_pool_holds_every_poller():
    """16 pollers long-polling at once, and answers beside them: no "Connection pool is
    full" (each poller keeps its connection)."""
    arn = "arn:aws:states:us-west-2:123456789012:activity:Review"
    settings = Settings(aws_region="us-west-2", activities=(arn,), pollers_per_activity=16)
    assert pool_connections(settings) == 26
    assert pool_connections(Settings(aws_region="us-west-2")) == 10
    client = Client(settings)._client("stepfunctions", "us-west-2")
    assert client.meta.config.max_pool_connections == 26
