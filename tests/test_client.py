"""The Step Functions client: ARNs, regions, credentials, and what AWS errors mean."""

import json
import uuid

import botocore.exceptions
import pytest

from stepfunction import Settings
from stepfunction.client import (
    InvalidAnswer,
    StepFunctions,
    TaskGone,
    Unavailable,
    UnknownActivity,
    parse_arn,
    redact,
    translate,
)
from tests.conftest import ADMIN, REVIEWER, Workflows, user_id


def client_error(code, status=400):
    response = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
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
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), Unavailable),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), Unavailable),
    ],
)
def test_aws_errors_are_translated(error, expected):
    translated = translate(error)
    assert type(translated) is expected
    assert translated.code


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
    for bad in (None, 42, "", "ManualStep", "arn:aws:lambda:us-west-2:123456789012:function:F"):
        assert parse_arn(bad) is None


def test_redact_keeps_a_prefix_only():
    token = "AAAAKgAAAAIAAAAAAAAAAbcdefghijklmnop"
    assert redact(token).startswith(token[:8])
    assert token not in redact(token)
    assert redact(None) == "<none>"


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
    assert StepFunctions(settings).region_for(record) == expected


def test_answer_reaches_the_region_of_the_activity(app, collection, emulator):
    """The app's region setting is us-west-2; the activity lives in eu-west-1."""
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
    record = app.post_json(
        f"{collection}/records",
        {"data": {"activityArn": activity}, "permissions": {"write": [user_id(app, REVIEWER)]}},
        headers=ADMIN,
    ).json["data"]

    response = app.post_json(
        f"{collection}/records/{record['id']}/stepfunction",
        {"answer": "SUCCEED"},
        headers=REVIEWER,
        status="*",
    )

    assert response.status_code == 200, response.json
    described = Workflows(emulator, region="eu-west-1").wait_done(execution)
    assert described["status"] == "SUCCEEDED"


def test_empty_keys_use_the_default_credential_chain(app_factory, monkeypatch, emulator):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-environment")
    app = app_factory(**{"stepfunction.aws_access_key": "", "stepfunction.aws_secret_key": ""})
    sfn = app.app.registry.stepfunctions
    credentials = sfn.client("us-west-2")._request_signer._credentials
    assert credentials.access_key == "from-environment"
