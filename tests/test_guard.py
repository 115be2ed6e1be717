"""The guard's pure parts: where a body sets a token, and what a write would store."""

import pytest

from stepfunction.guard import JSON_PATCH, MERGE_PATCH, tokens_in
from stepfunction.proposal import proposed


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
        ("PUT", "application/json", {"permissions": {}}, OLD),
    ],
)
def test_proposed(method, content_type, body, expected):
    assert proposed(method, content_type, body, OLD, ACL)[0] == expected


ACL = {"read": {"r"}, "write": {"w"}}


@pytest.mark.parametrize(
    "method,content_type,body,expected",
    [
        ("PATCH", "application/json", {"data": {}}, {**ACL, "write": {"w", "me"}}),
        (
            "PUT",
            "application/json",
            {"data": {}, "permissions": {"write": ["w"]}},
            {"write": {"w", "me"}},
        ),
        (
            "PATCH",
            "application/json",
            {"permissions": {"write": ["x"]}},
            {"read": {"r"}, "write": {"x", "me"}},
        ),
        (
            "PATCH",
            "application/json",
            {"permissions": {"write": None}},
            {**ACL, "write": {"w", "me"}},
        ),
        ("PATCH", MERGE_PATCH, {"permissions": {"read": None}}, {"write": {"w", "me"}}),
        (
            "PATCH",
            MERGE_PATCH,
            {"permissions": {"read": ["x"]}},
            {"read": {"x"}, "write": {"w", "me"}},
        ),
        (
            "PATCH",
            JSON_PATCH,
            [{"op": "add", "path": "/permissions/write/system.Everyone"}],
            {**ACL, "write": {"w", "me", "system.Everyone"}},
        ),
    ],
)
def test_proposed_acl(method, content_type, body, expected):
    """The ACL Kinto stores: the ACEs given, the writer made an owner."""
    assert proposed(method, content_type, body, OLD, ACL, writer="me")[1] == expected
