"""Delegation, and votes by mailed links beside signed-in reviewers (mail on)."""

import base64
import json

import pytest
from kinto.core.testing import get_user_headers

from stepfunction.testing.mailbox import links_of, text_of
from tests.conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    STRANGER,
    answer_url,
    mail_settings,
    permissions_of,
    user_id,
)
from tests.test_links import confirm, path_of, submit


ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
PASSWORD = "a long enough password"


def account(address):
    token = base64.b64encode(f"{address}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def decided(app_factory, mailbox, callback, start_worker):
    """``decided(**fields)``: a pending callback step for Alice (signed in, an account named by
    her address, and mailed) and Bob (mailed). Returns ``(app, record, execution, links)``."""

    def make(reviewers=(ALICE, BOB), **fields):
        app = app_factory(
            **mail_settings(mailbox),
            includes="stepfunction kinto.plugins.history kinto.plugins.accounts",
            **{
                "multiauth.policies": "account basicauth",
                "multiauth.policy.account.use": (
                    "kinto.plugins.accounts.authentication.AccountsAuthenticationPolicy"
                ),
            },
            account_create_principals="system.Everyone",
        )
        app.put_json(f"/accounts/{ALICE}", {"data": {"password": PASSWORD}})
        readers = [f"account:{ALICE}", user_id(app, REVIEWER)]
        app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
        app.put_json(STEPS, {"permissions": {"read": readers}}, headers=ADMIN)
        token, execution = callback({"amount": 12}, timeout=60)
        start_worker(app)
        data = {"subject": "Pay <b>42</b>", "reviewer": list(reviewers), "taskToken": token}
        body = {"data": {**data, "executionArn": execution, **fields}}
        body["permissions"] = {"write": [f"account:{ALICE}", user_id(app, REVIEWER)]}
        record = app.post_json(f"{STEPS}/records", body, headers=ADMIN).json["data"]
        links = {a: links_of(mailbox.wait(1, a)[0]) for a in reviewers}
        return app, record, execution, links

    return make


def delegate_url(record_id):
    return f"{STEPS}/records/{record_id}/stepfunction/delegate"


def record_of(app, record_id):
    return app.get(f"{STEPS}/records/{record_id}", headers=ADMIN).json["data"]


def test_links_vote_beside_signed_in_reviewers(decided, workflows, mailbox):
    app, record, execution, links = decided(quorum=3)
    assert "0 of 3 approvals so far" in text_of(mailbox.to(ALICE)[0])
    hostile = "<img src=x onerror=alert(1)> ok"
    opened = app.get(path_of(links[BOB]["Approve"]))
    opened.forms[0]["comment"] = hostile
    page = submit(app, opened, status=202)
    assert "1 of 3 approvals so far" in page.text and "<img" not in page.text
    assert record_of(app, record["id"])["votes"][0]["comment"] == hostile
    again = confirm(app, links[BOB]["Approve"], status=200)
    assert "already recorded" in again.text
    assert "1 of 3" in app.get(path_of(links[ALICE]["Approve"])).text
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=account(ALICE))
    confirm(app, links[ALICE]["Approve"], status=200)  # Alice again, by her link: not counted
    assert record_of(app, record["id"]).get("status") == "UNANSWERED"
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)
    output = json.loads(workflows.wait_done(execution)["output"])
    assert output["approvals"][0]["comment"] == hostile
    assert [a["by"] for a in output["approvals"]] == [
        f"link:{BOB}",
        f"account:{ALICE}",
        user_id(app, REVIEWER),
    ]


def test_self_approval_is_refused_on_every_path(decided, workflows):
    app, record, execution, links = decided(
        quorum=2, requester=ALICE, selfApproval=False, delegation=True
    )
    acl = permissions_of(app, record["id"])
    for answer in ("SUCCEED", "FAIL"):
        refused = app.post_json(
            answer_url(record["id"]), {"answer": answer}, headers=account(ALICE), status=403
        )
        assert "requester" in refused.json["message"]
        page = confirm(
            app, links[ALICE]["Approve" if answer == "SUCCEED" else "Reject"], status=403
        )
        assert "requester" in page.text
    refused = app.post_json(
        delegate_url(record["id"]), {"to": ALICE}, headers=REVIEWER, status=403
    )
    assert "requester" in refused.json["message"]
    stored = record_of(app, record["id"])
    assert "votes" not in stored and "delegations" not in stored
    assert permissions_of(app, record["id"]) == acl
    assert workflows.status(execution) == "RUNNING"


def test_a_rejection_by_link_keeps_its_reason_as_comment_escaped(decided, workflows):
    app, record, execution, links = decided(quorum=2)
    hostile = "<script>alert(1)</script>"
    page = confirm(app, links[BOB]["Reject"], reason=hostile)
    assert "<script>" not in page.text
    described = workflows.wait_done(execution)
    assert described["status"] == "FAILED" and described["cause"] == hostile
    stored = record_of(app, record["id"])
    assert stored["votes"][0]["comment"] == hostile


def test_delegation_replaces_the_delegator(decided, workflows, mailbox):
    app, record, execution, links = decided(delegation=True)
    before = permissions_of(app, record["id"])

    done = app.post_json(
        delegate_url(record["id"]), {"to": CAROL, "comment": "On leave"}, headers=account(ALICE)
    )

    stored = done.json["data"]
    assert stored["reviewer"] == [BOB, CAROL]
    [entry] = stored["delegations"]
    assert entry["from"] == f"account:{ALICE}" and entry["to"] == CAROL
    assert entry["comment"] == "On leave"
    after = permissions_of(app, record["id"])
    assert after["write"] == [p for p in before["write"] if p != f"account:{ALICE}"]
    assert {k: v for k, v in after.items() if k != "write"} == {
        k: v for k, v in before.items() if k != "write"
    }
    # The delegate is mailed at once; the delegator's links and write stop.
    carol = links_of(mailbox.wait(1, CAROL)[0])
    page = app.get(path_of(links[ALICE]["Approve"]), status=403)
    assert "no longer a reviewer" in page.text
    app.post_json(
        answer_url(record["id"]), {"answer": "SUCCEED"}, headers=account(ALICE), status=403
    )
    confirm(app, carol["Approve"])
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_delegation_to_a_principal(decided, workflows):
    app, record, execution, _ = decided(delegation=True)
    stranger = user_id(app, STRANGER)
    app.post_json(delegate_url(record["id"]), {"to": stranger}, headers=REVIEWER)
    acl = permissions_of(app, record["id"])
    assert stranger in acl["write"] and user_id(app, REVIEWER) not in acl["write"]
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=403)
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=STRANGER)
    assert workflows.wait_done(execution)["status"] == "SUCCEEDED"


def test_delegation_refusals(decided):
    app, record, _, _ = decided(quorum=2)
    url = delegate_url(record["id"])
    acl = permissions_of(app, record["id"])
    refused = app.post_json(url, {"to": CAROL}, headers=REVIEWER, status=403)
    assert "delegation" in refused.json["message"]
    app.patch_json(
        f"{STEPS}/records/{record['id']}", {"data": {"delegation": True}}, headers=ADMIN
    )
    app.post_json(url, {"to": ALICE}, headers=account(ALICE), status=403)  # to oneself
    app.post_json(url, {"to": CAROL}, headers=STRANGER, status=403)
    app.post_json(url, {"to": CAROL}, status=401)
    app.post_json(url, {"to": "system.Authenticated"}, headers=REVIEWER, status=400)
    app.post_json(url, {"to": CAROL, "comment": "x" * 4097}, headers=REVIEWER, status=400)
    app.post_json(url, {"to": CAROL, "extra": 1}, headers=REVIEWER, status=400)
    app.post_json(url, {"to": "x" * 300 + "@example.com"}, headers=REVIEWER, status=400)
    app.post(url, "to=carol", headers=REVIEWER, status=415)
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER, status=202)
    refused = app.post_json(url, {"to": CAROL}, headers=REVIEWER, status=403)
    assert "already voted" in refused.json["message"]
    # A writer of the collection has nothing of his own on the record to hand on.
    manager = get_user_headers("manager")
    app.patch_json(STEPS, {"permissions": {"write": [user_id(app, manager)]}}, headers=ADMIN)
    app.post_json(url, {"to": CAROL}, headers=manager, status=403)
    assert "delegations" not in record_of(app, record["id"])
    assert permissions_of(app, record["id"]) == acl


def test_openapi_documents_the_delegate_endpoint(app):
    paths = app.get("/__api__").json["paths"]
    path = "/buckets/{bucket_id}/collections/{collection_id}/records/{id}/stepfunction/delegate"
    responses = paths[path]["post"]["responses"]
    assert {"200", "403", "409"} <= set(responses)
    answer = paths[path.removesuffix("/delegate")]["post"]["responses"]
    assert "202" in answer
