"""Decisions by several people: a quorum of approvals, one veto, comments, no self-approval."""

import collections
import json
import time
import urllib.error
import urllib.request

import pytest
from kinto.core.testing import get_user_headers

from stepfunction.decision_fields import decision_of, decision_problem, is_requester
from stepfunction.decisions import output_with, progress_text
from tests.conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    STRANGER,
    answer_url,
    app_settings,
    permissions_of,
    user_id,
    wait_for,
)


SECOND = get_user_headers("second")
THIRD = get_user_headers("third")
READER = get_user_headers("reader")


@pytest.fixture
def steps(app):
    """The steps collection; its readers: the reviewers and a reader."""
    readers = [user_id(app, h) for h in (REVIEWER, SECOND, THIRD, READER)]
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {"permissions": {"read": readers}}, headers=ADMIN)
    return STEPS


def post_decision(app, token, reviewers=(REVIEWER, SECOND, THIRD), **fields):
    """A step answered with the callback ``token``, writable by ``reviewers``."""
    writers = [user_id(app, h) for h in reviewers]
    body = {"data": {"taskToken": token, "subject": "Pay", **fields}}
    body["permissions"] = {"write": writers}
    return app.post_json(f"{STEPS}/records", body, headers=ADMIN).json["data"]


def record_of(app, record_id):
    return app.get(f"{STEPS}/records/{record_id}", headers=ADMIN).json["data"]


def vote(app, record_id, headers, answer="SUCCEED", status=None, **body):
    return app.post_json(
        answer_url(record_id), {"answer": answer, **body}, headers=headers, status=status
    )


def sends(emulator):
    calls = collections.Counter(emulator.calls)
    return calls["SendTaskSuccess"] + calls["SendTaskFailure"]


# --- Pure functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data,field",
    [
        ({"quorum": 0}, "quorum"),
        ({"quorum": 21}, "quorum"),
        ({"quorum": True}, "quorum"),
        ({"quorum": "2"}, "quorum"),
        ({"requester": "system.Authenticated"}, "requester"),
        ({"requester": "not me"}, "requester"),
        ({"selfApproval": "no"}, "selfApproval"),
        ({"delegation": 1}, "delegation"),
        ({"escalateAfter": 0}, "escalateAfter"),
        ({"escalateAfter": "1h"}, "escalateAfter"),
        ({"escalateTo": []}, "escalateTo"),
        ({"escalateTo": ["ops@example.com", "system.Everyone"]}, "escalateTo"),
        ({"escalateTo": ["link:bob@example.com"]}, "escalateTo"),
    ],
)
def test_decision_fields_are_checked(data, field):
    assert decision_problem(data)[0] == field


def test_decision_fields_defaults():
    assert decision_problem({"quorum": 3, "requester": "account:ann", "escalateAfter": 60}) is None
    assert decision_problem({"quorum": None}) is None
    assert decision_of({}).quorum == 1 and decision_of({}).self_approval
    assert decision_of({"quorum": "x"}).quorum == 1
    record = {"escalateTo": "ops@example.com", "quorum": 2}
    assert decision_of(record).escalate_to == ("ops@example.com",)


def test_requester_matching():
    assert is_requester("Ann@Example.com", "link:ann@example.com")
    assert is_requester("ann@example.com", "account:ann@example.com", ["account:ann@example.com"])
    assert is_requester("account:ann", "account:ann", ["account:ann", "system.Authenticated"])
    assert is_requester("/buckets/b/groups/payers", "account:ann", ["/buckets/b/groups/payers"])
    assert not is_requester("account:ann", "link:ann@example.com")
    assert not is_requester(None, "account:ann", ["account:ann"])
    assert not is_requester("bob@example.com", "link:ann@example.com")


def test_output_and_progress():
    approvals = [{"by": "a", "at": "t", "answer": "SUCCEED", "comment": "ok"}]
    assert output_with({"x": 1}, approvals) == {
        "x": 1,
        "approvals": [{"by": "a", "at": "t", "comment": "ok"}],
    }
    assert output_with([1], approvals)["output"] == [1]
    record = {"quorum": 2, "votes": approvals + [{"by": "a", "answer": "SUCCEED"}]}
    assert progress_text(record) == "1 of 2 approvals so far"
    assert progress_text({}) == ""


# --- Quorum --------------------------------------------------------------------------------


def test_quorum_of_two_with_repeats(app, steps, callback, workflows, emulator):
    token, execution = callback({"amount": 12})
    record = post_decision(app, token, quorum=2)
    acl = permissions_of(app, record["id"])
    emulator.reset_calls()

    first = vote(app, record["id"], REVIEWER, status=202, comment="Looks right")
    assert first.json["data"]["status"] == "UNANSWERED"
    [entry] = first.json["data"]["votes"]
    assert entry["by"] == user_id(app, REVIEWER) and entry["comment"] == "Looks right"
    again = vote(app, record["id"], REVIEWER, status=200)
    assert again.json["data"]["votes"] == [entry]
    assert sends(emulator) == 0 and workflows.status(execution) == "RUNNING"

    done = vote(app, record["id"], SECOND, status=200, output={"paid": True})
    assert done.json["data"]["status"] == "SUCCEED"
    assert sends(emulator) == 1
    described = workflows.wait_done(execution)
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["paid"] is True
    assert [a["by"] for a in output["approvals"]] == [
        user_id(app, REVIEWER),
        user_id(app, SECOND),
    ]
    assert output["approvals"][0]["comment"] == "Looks right"
    assert workflows.history_types(execution).count("TaskSucceeded") == 1
    stored = record_of(app, record["id"])
    assert len(stored["votes"]) == 2 and stored["answer"]["output"] == output
    assert permissions_of(app, record["id"]) == acl

    # A third approval after the quorum: the step is answered, nothing is sent again.
    late = vote(app, record["id"], THIRD, status=200)
    assert late.json["data"]["status"] == "SUCCEED" and sends(emulator) == 1
    history = app.get("/buckets/stepfunction/history", headers=ADMIN).json["data"]
    voted = [
        h for h in history if h["uri"].endswith(record["id"]) and h["target"]["data"].get("votes")
    ]
    assert len(voted) == 2  # the vote below the quorum, and the answer


def test_quorum_of_three(app, steps, callback, workflows, emulator):
    token, execution = callback()
    record = post_decision(app, token, quorum=3)
    emulator.reset_calls()
    vote(app, record["id"], REVIEWER, status=202)
    vote(app, record["id"], SECOND, status=202)
    vote(app, record["id"], SECOND, status=200)
    vote(app, record["id"], REVIEWER, status=200)
    assert record_of(app, record["id"])["status"] == "UNANSWERED" and sends(emulator) == 0
    vote(app, record["id"], THIRD, status=200)
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    assert sends(emulator) == 1
    assert len(json.loads(workflows.wait_done(execution)["output"])["approvals"]) == 3


def test_one_rejection_fails_the_step_at_once(app, steps, callback, workflows, emulator):
    token, execution = callback()
    record = post_decision(app, token, quorum=3)
    vote(app, record["id"], REVIEWER, status=202)
    failed = vote(
        app, record["id"], SECOND, "FAIL", status=200, cause="Wrong IBAN", comment="Call them"
    )
    assert failed.json["data"]["status"] == "FAIL"
    described = workflows.wait_done(execution)
    assert described["status"] == "FAILED" and described["cause"] == "Wrong IBAN"
    stored = record_of(app, record["id"])
    assert [v["answer"] for v in stored["votes"]] == ["SUCCEED", "FAIL"]
    assert stored["votes"][1]["comment"] == "Call them"
    assert stored["answer"]["comment"] == "Call them"
    vote(app, record["id"], THIRD, status=409)  # answered otherwise


def test_quorum_one_answers_as_before_with_a_comment(app, steps, callback, workflows):
    token, execution = callback()
    record = post_decision(app, token)
    vote(app, record["id"], REVIEWER, status=200, comment="Fine by me")
    output = json.loads(workflows.wait_done(execution)["output"])
    assert output["message"] == "signed off"
    assert output["approvals"][0]["comment"] == "Fine by me"
    token, execution = callback()
    plain = post_decision(app, token)
    vote(app, plain["id"], REVIEWER, status=200)
    assert json.loads(workflows.wait_done(execution)["output"]) == {"message": "signed off"}


# --- Self-approval ------------------------------------------------------------------------------


def test_the_requester_may_not_answer(app, steps, callback, workflows, emulator):
    token, execution = callback()
    requester = user_id(app, REVIEWER)
    record = post_decision(app, token, quorum=2, requester=requester, selfApproval=False)
    emulator.reset_calls()
    for answer in ("SUCCEED", "FAIL"):
        refused = vote(app, record["id"], REVIEWER, answer, status=403)
        assert "requester" in refused.json["message"] and refused.json["errno"] == 121
    assert "votes" not in record_of(app, record["id"]) and sends(emulator) == 0
    vote(app, record["id"], SECOND, status=202)
    vote(app, record["id"], THIRD, status=200)
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_the_requester_may_answer_by_default(app, steps, callback, workflows):
    token, execution = callback()
    record = post_decision(app, token, requester=user_id(app, REVIEWER))
    vote(app, record["id"], REVIEWER, status=200)
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


# --- Attackers ----------------------------------------------------------------------------------


def test_strangers_readers_and_anonymous_do_not_vote(app, steps, callback, workflows):
    token, execution = callback()
    record = post_decision(app, token, quorum=2)
    vote(app, record["id"], STRANGER, status=403)
    vote(app, record["id"], READER, status=403)
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, status=401)
    assert "votes" not in record_of(app, record["id"])


FORGED = {"votes": [{"by": "x", "answer": "SUCCEED"}], "delegations": [], "escalated": {"at": 1}}
DECIDING = {"quorum": 1, "requester": "account:x", "selfApproval": True, "delegation": True}


def test_reviewers_do_not_forge_votes_nor_change_decision_fields(app, steps, callback):
    token, _ = callback()
    record = post_decision(app, token, quorum=2, selfApproval=False, requester="account:ann")
    acl = permissions_of(app, record["id"])
    url = f"{STEPS}/records/{record['id']}"
    for field, value in FORGED.items():  # the plugin's: refused to the author too
        for headers in (REVIEWER, ADMIN):
            refused = app.patch_json(url, {"data": {field: value}}, headers=headers, status=403)
            assert refused.json["details"]["name"] == field
    for field, value in DECIDING.items():  # the author's
        refused = app.patch_json(url, {"data": {field: value}}, headers=REVIEWER, status=403)
        assert refused.json["details"]["name"] == field
    assert record_of(app, record["id"]) == record
    assert permissions_of(app, record["id"]) == acl


def test_authors_decision_fields_are_checked(app, steps, callback):
    token, _ = callback()
    body = {"data": {"taskToken": token, "quorum": 0}}
    refused = app.post_json(f"{STEPS}/records", body, headers=ADMIN, status=400)
    assert "quorum" in refused.json["message"]


def test_comment_too_long_is_refused(app, steps, callback, emulator):
    token, _ = callback()
    record = post_decision(app, token, quorum=2)
    emulator.reset_calls()
    vote(app, record["id"], REVIEWER, status=400, comment="x" * 4097)
    vote(app, record["id"], REVIEWER, status=400, comment=12)
    assert "votes" not in record_of(app, record["id"]) and sends(emulator) == 0


# --- Concurrent votes over several processes --------------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql"])  # processes share PostgreSQL only
def test_concurrent_votes_over_two_processes_send_once(
    app, steps, callback, workflows, emulator, tmp_path, backend
):
    from tests.test_concurrency import all_at_once, kinto_processes

    token, execution = callback()
    voters = [REVIEWER, SECOND, THIRD, get_user_headers("fourth")]
    record = post_decision(app, token, reviewers=voters, quorum=2)
    acl = permissions_of(app, record["id"])
    emulator.reset_calls()
    settings = app_settings("postgresql", emulator)
    with kinto_processes(settings, tmp_path, 2) as servers:
        calls = [
            (post_vote, (servers.urls[(i + j) % 2], record["id"], headers, f"{i}-{j}"))
            for i, headers in enumerate(voters)
            for j in range(2)
        ]
        results = all_at_once(calls)

    assert {status for status, _ in results} <= {200, 202}, results
    stored = record_of(app, record["id"])
    assert stored["status"] == "SUCCEED"
    voted = [v["by"] for v in stored["votes"]]
    assert len(voted) == len(set(voted)) == 2
    assert collections.Counter(emulator.calls)["SendTaskSuccess"] == 1
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"
    assert workflows.history_types(execution).count("TaskSucceeded") == 1
    approvals = json.loads(workflows.wait_done(execution)["output"])["approvals"]
    assert [a["by"] for a in approvals] == voted
    assert permissions_of(app, record["id"]) == acl


def post_vote(url, record_id, headers, comment, deadline=30):
    """POST an approval as a client must: again after a response with Retry-After."""
    give_up = time.monotonic() + deadline
    body = json.dumps({"answer": "SUCCEED", "comment": comment}).encode()
    while True:
        request = urllib.request.Request(
            f"{url}{STEPS}/records/{record_id}/stepfunction",
            data=body,
            headers={**headers, "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            payload = json.loads(e.read())
            if "Retry-After" not in e.headers or time.monotonic() > give_up:
                return e.code, payload
        time.sleep(0.1)


# --- The worker takes the fields from the task's input ------------------------------------------


def test_the_worker_takes_the_decision_fields_from_the_task_input(
    app_factory, workflows, start_worker
):
    activity = workflows.activity()
    app = app_factory(**{"stepfunction.activities": activity})
    machine = workflows.machine({"Type": "Task", "Resource": activity, "TimeoutSeconds": 30})
    reviewers = [user_id(app, h) for h in (REVIEWER, SECOND)]
    fields = {"quorum": 2, "requester": "account:ann", "selfApproval": False, "delegation": True}
    fields.update(escalateAfter=3600, escalateTo=["ops@example.com"])
    forged = {"votes": [{"by": "x", "answer": "SUCCEED"}], "escalated": {"at": "x"}}
    body = {"data": {"id": "pay-42", **fields, **forged}, "permissions": {"write": reviewers}}
    execution = workflows.start(machine, body)
    bad = workflows.start(machine, {"data": {"id": "bad-quorum", "quorum": 0}})
    start_worker(app)

    stored = wait_for(
        lambda: app.get(f"{STEPS}/records/pay-42", headers=REVIEWER, expect_errors=True).json.get(
            "data"
        ),
        30,
        "the task's record",
    )
    assert {k: stored[k] for k in fields} == fields
    assert "votes" not in stored and "escalated" not in stored
    described = workflows.wait_done(bad)
    assert described["status"] == "FAILED" and "quorum" in described["cause"]
    app.post_json(answer_url("pay-42"), {"answer": "SUCCEED"}, headers=REVIEWER, status=202)
    app.post_json(answer_url("pay-42"), {"answer": "SUCCEED"}, headers=SECOND, status=200)
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_a_record_that_cant_be_answered_records_no_vote(app, steps):
    body = {"data": {"subject": "No task", "quorum": 2}}
    body["permissions"] = {"write": [user_id(app, REVIEWER)]}
    record = app.post_json(f"{STEPS}/records", body, headers=ADMIN).json["data"]
    vote(app, record["id"], REVIEWER, status=400)
    assert "votes" not in record_of(app, record["id"])
