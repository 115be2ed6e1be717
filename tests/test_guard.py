"""The guard's pure parts: where a body sets a token, and what a write would store."""

import pytest

from stepfunction.guard import JSON_PATCH, MERGE_PATCH, proposed, tokens_in


OLD = {"id": "r", "status": "UNANSWERED", "subject": "s"}


@pytest.mark.parametrize(
    "body,content_type,count",
    [
        ({"data": {"taskToken": "t"}}, "application/json", 1),
        ({"data": {"subject": "s"}}, "application/json", 0),
        ({"data": "x"}, "application/json", 0),
        ([{"op": "add", "path": "/data/taskToken", "value": "t"}], JSON_PATCH, 1),
        ([{"op": "copy", "from": "/data/a", "path": "/data/taskToken"}], JSON_PATCH, 0),
        ([{"op": "add", "path": "/data/taskToken", "value": "t"}], "application/json", 0),
    ],
)
def test_tokens_in(body, content_type, count):
    assert len(tokens_in(body, content_type)) == count


@pytest.mark.parametrize(
    "method,content_type,body,expected",
    [
        ("PUT", "application/json", {"data": {"subject": "x"}}, {"subject": "x"}),
        ("POST", "application/json", {"data": {"status": "FAIL"}}, {"status": "FAIL"}),
        ("PATCH", "application/json", {"data": {"status": "FAIL"}}, {**OLD, "status": "FAIL"}),
        ("PATCH", MERGE_PATCH, {"data": {"subject": None}}, {"id": "r", "status": "UNANSWERED"}),
        (
            "PATCH",
            JSON_PATCH,
            [{"op": "replace", "path": "/data/status", "value": "SUCCEED"}],
            {**OLD, "status": "SUCCEED"},
        ),
        ("PATCH", JSON_PATCH, [{"op": "remove", "path": "/data/missing"}], None),
        ("PATCH", "application/json", {"permissions": {}}, OLD),
        ("DELETE", None, None, None),
    ],
)
def test_proposed(method, content_type, body, expected):
    assert proposed(method, content_type, body, OLD) == expected
