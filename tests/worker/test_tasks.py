"""What a task becomes: the worker's pure functions, without the emulator or Kinto."""

import json

import pytest
from pyramid import httpexceptions

from stepfunction.schema import TOKEN_MASK
from stepfunction.worker.tasks import (
    INVALID_RECORD,
    Rejected,
    Task,
    describe_http_error,
    parse_input,
    parse_message,
    payload_region,
    queue_region,
    record_id_for,
    step_for,
    task_fields,
)


ACTIVITY = "arn:aws:states:eu-west-1:123456789012:activity:Review"
TASK = Task("token-1", "{}", ACTIVITY, ACTIVITY, "eu-west-1")


def test_record_ids_follow_the_token():
    assert record_id_for("a") == record_id_for("a") != record_id_for("b")
    assert len(record_id_for("a")) == 36


@pytest.mark.parametrize(
    "raw,expected",
    [("", {}), ("  ", {}), ('{"a": 1}', {"a": 1}), ({"a": 1}, {"a": 1})],
)
def test_parse_input(raw, expected):
    assert parse_input(raw) == expected


@pytest.mark.parametrize("raw", ["{", "[1]", "3", [1], None])
def test_parse_input_refuses_what_is_no_object(raw):
    with pytest.raises(Rejected) as raised:
        parse_input(raw)
    assert raised.value.error == INVALID_RECORD


@pytest.mark.parametrize(
    "raw,named",
    [
        ('{"a": "x\\u0000y"}', "NUL"),
        ({"a\u0000": 1}, "NUL"),
        ({"a": [{"b": "\u0000"}]}, "NUL"),
        ("[" * 3000 + "]" * 3000, "deeper than 100"),
        ('{"a":' * 101 + "1" + "}" * 101, "deeper than 100"),
    ],
    ids=["escaped-nul", "nul-key", "nested-nul", "json-recursion", "101-levels"],
)
def test_parse_input_refuses_what_no_backend_stores_alike(raw, named):
    with pytest.raises(Rejected) as raised:
        parse_input(raw)
    assert raised.value.error == INVALID_RECORD and named in raised.value.cause


def test_parse_input_takes_100_levels():
    assert parse_input('{"a":' * 99 + "1" + "}" * 99)["a"]


def test_step_from_a_record_body():
    step = step_for(
        TASK,
        {
            "data": {"id": "r1", "subject": "s", "last_modified": 1},
            "permissions": {"write": ["u"]},
        },
    )
    assert step.record_id == "r1"
    assert step.permissions == {"write": ["u"]}
    assert step.data["subject"] == "s" and "last_modified" not in step.data
    assert step.data["taskToken"] == TOKEN_MASK and step.data["status"] == "UNANSWERED"
    assert step.data["activityArn"] == ACTIVITY


def test_step_from_bare_data_is_named_after_the_token():
    step = step_for(TASK, {"subject": "bare"})
    assert step.record_id == record_id_for("token-1")
    assert step.permissions == {} and step.data["subject"] == "bare"


def test_input_cannot_set_the_plugins_fields():
    data = {"taskToken": "other", "status": "SUCCEED", "answer": {"by": "me"}}
    step = step_for(TASK, {"data": data})
    assert step.data["taskToken"] == TOKEN_MASK and step.data["status"] == "UNANSWERED"
    assert "answer" not in step.data


@pytest.mark.parametrize(
    "parsed",
    [
        {"data": {"id": "not valid!"}},
        {"data": {"id": 3}},
        {"data": {}, "permissions": {"write": "everyone"}},
        {"data": {}, "permissions": {"delete": ["u"]}},
        {"data": {}, "permissions": ["u"]},
        {"data": {"executionArn": ACTIVITY}},
    ],
    ids=["bad-id", "number-id", "principals-not-a-list", "unknown-permission", "list", "arn"],
)
def test_step_refuses_a_malformed_body(parsed):
    with pytest.raises(Rejected):
        step_for(TASK, parsed)


def test_task_fields_of_a_callback_task():
    fields = task_fields(Task("t", {}, "queue"), {"a": 1})
    assert fields == {"taskToken": TOKEN_MASK, "status": "UNANSWERED", "input": {"a": 1}}


@pytest.mark.parametrize(
    "body,expected",
    [
        ({"TaskToken": "t", "Payload": {"a": 1}}, ("t", {"a": 1})),
        ({"taskToken": "t", "b": 2}, ("t", {"b": 2})),
        ({"Payload": {}}, None),
        ({"TaskToken": ""}, None),
        ({"TaskToken": "t" * 2049}, None),
        (["TaskToken"], None),
    ],
)
def test_parse_message(body, expected):
    assert parse_message({"Body": json.dumps(body)}) == expected


def test_parse_message_that_is_not_json():
    assert parse_message({"Body": "not json"}) is None
    assert parse_message({}) is None


@pytest.mark.parametrize(
    "payload,expected",
    [
        ({"data": {"activityArn": ACTIVITY}}, "eu-west-1"),
        ({"stateMachineArn": ACTIVITY.replace("activity:Review", "stateMachine:M")}, "eu-west-1"),
        ({"data": {"subject": "none"}}, "us-west-2"),
        ("text", "us-west-2"),
    ],
)
def test_payload_region(payload, expected):
    assert payload_region(payload, "us-west-2") == expected


@pytest.mark.parametrize(
    "url,expected",
    [
        ("https://sqs.eu-west-3.amazonaws.com/123456789012/q", "eu-west-3"),
        ("https://ap-south-1.queue.amazonaws.com/123456789012/q", "ap-south-1"),
        ("http://127.0.0.1:5000/123456789012/q", "default"),
    ],
)
def test_queue_region(url, expected):
    assert queue_region(url, "default") == expected


def test_describe_http_error():
    error = httpexceptions.HTTPBadRequest()
    error.body = json.dumps({"message": "bad", "details": [{"name": "x"}]}).encode()
    assert describe_http_error(error) == '400 Bad Request: bad [{"name": "x"}]'
