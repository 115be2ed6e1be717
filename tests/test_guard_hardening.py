"""Issue 13, findings 2 and 6: the field guard, tried with every body Kinto reads, and the
fields and ACL that say what reviewers are asked.

2. The guard reads what Kinto writes: a write whose body the guard can't read exactly as Kinto
   will (another charset, a content coding, a media type Kinto reads otherwise) is refused
   before anything is stored, on both backends (the memory backend can't roll back).
6. Authors own what reviewers are asked: ``subject``, ``input``, ``reviewer``, ``deadline`` and
   the record's permissions are the author's; kinto-admin's full PUT that leaves them as they
   are still works.

Memory and PostgreSQL, real Kinto, the local Step Functions, a real SMTP server.
"""

import gzip
import json

import pytest
from kinto.core.testing import get_user_headers

from stepfunction import guard
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


OTHER_REVIEWER = get_user_headers("other-reviewer")
ALICE, BOB, MALLORY = "alice@example.com", "bob@example.com", "mallory@example.com"
EVERYONE = "system.Everyone"
JSON_PATCH, MERGE_PATCH = "application/json-patch+json", "application/merge-patch+json"
STEP = {
    "subject": "Pay invoice 42",
    "input": {"amount": 12},
    "reviewer": ALICE,
    "deadline": "2100-01-01T00:00:00Z",
}


@pytest.fixture
def steps(app):
    """The steps collection: written by the admin, readable by both reviewers."""
    readers = [user_id(app, h) for h in (REVIEWER, OTHER_REVIEWER)]
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {"permissions": {"read": readers}}, headers=ADMIN)
    return STEPS


def shared_step(app, data=STEP, record_id=None):
    """A step its author gives to two reviewers."""
    writers = [user_id(app, h) for h in (REVIEWER, OTHER_REVIEWER)]
    body = {"data": data, "permissions": {"write": writers}}
    url = f"{STEPS}/records/{record_id}" if record_id else f"{STEPS}/records"
    method = app.put_json if record_id else app.post_json
    return method(url, body, headers=ADMIN).json["data"]


def stored(app, record_id):
    """The record and its ACL (each ACE sorted), as its author reads them."""
    response = app.get(f"{STEPS}/records/{record_id}", headers=ADMIN)
    acl = {perm: sorted(principals) for perm, principals in response.json["permissions"].items()}
    return response.json["data"], acl


def records_count(app):
    return len(app.get(f"{STEPS}/records", headers=ADMIN).json["data"])


def batched(app, requests, headers=REVIEWER):
    """The responses of a batch, as ``(status, body)`` pairs."""
    responses = app.post_json("/batch", {"requests": requests}, headers=headers).json["responses"]
    return [(r["status"], r["body"]) for r in responses]


# --- 2. The guard reads what Kinto writes ---------------------------------------------------

# How a body is sent: (encode the JSON text, Content-Type parameters, Content-Encoding, the
# status the guard answers). 403: read as Kinto reads it, and refused for what it changes.
ENCODINGS = {
    "utf-8": (str.encode, "", None, 403),
    "utf-8-declared": (str.encode, "; charset=utf-8", None, 403),
    "utf-8-declared-utf8": (str.encode, ";charset=UTF8", None, 403),
    "no-content-type": (str.encode, None, None, 403),
    # rapidjson (Kinto's parser) takes a trailing NUL, Python's json does not.
    "trailing-nul": (lambda s: s.encode() + b"\0", "", None, 403),
    "utf-8-bom": (lambda s: s.encode("utf-8-sig"), "; charset=utf-8", None, 400),
    "utf-16": (lambda s: s.encode("utf-16"), "; charset=utf-16", None, 415),
    "utf-16-le-no-bom": (lambda s: s.encode("utf-16-le"), "; charset=utf-16-le", None, 415),
    "utf-32": (lambda s: s.encode("utf-32"), "; charset=utf-32", None, 415),
    # UTF-16 sent as UTF-8: Kinto reads UTF-8, where Python's json would guess UTF-16.
    "utf-16-undeclared": (lambda s: s.encode("utf-16"), "", None, 400),
    "utf-16-declared-utf-8": (lambda s: s.encode("utf-16"), "; charset=utf-8", None, 400),
    "latin-1": (lambda s: s.encode("latin-1"), "; charset=latin-1", None, 415),
    "cp500": (lambda s: s.encode("cp500"), "; charset=cp500", None, 415),
    "unknown-charset": (str.encode, "; charset=bogus", None, 415),
    "gzip": (lambda s: gzip.compress(s.encode()), "", "gzip", 415),
    "gzip-latin-1": (
        lambda s: gzip.compress(s.encode("latin-1")),
        "; charset=latin-1",
        "gzip",
        415,
    ),
}


def send(app, method, url, media_type, text, encoding, headers):
    encode, params, coding, _ = ENCODINGS[encoding]
    headers = dict(headers)
    if coding:
        headers["Content-Encoding"] = coding
    if params is None:  # no Content-Type at all
        return app.request(
            url,
            method=method,
            body=encode(text),
            headers=headers,
            content_type="",
            expect_errors=True,
        )
    headers["Content-Type"] = media_type + params
    return app.request(url, method=method, body=encode(text), headers=headers, expect_errors=True)


# Each way Kinto writes a record (its media types), with a body that adds an address to
# ``reviewer`` (a mailed link would answer as it) and fakes an answer, in non-ASCII.
def _writes(record):
    changes = {"reviewer": [ALICE, MALLORY], "subject": "Payé", "status": "SUCCEED"}
    ops = [{"op": "add", "path": f"/data/{k}", "value": v} for k, v in changes.items()]
    return {
        "put": ("PUT", "application/json", {"data": {**record, **changes}}),
        "patch": ("PATCH", "application/json", {"data": changes}),
        "merge-patch": ("PATCH", MERGE_PATCH, {"data": changes}),
        "json-patch": ("PATCH", JSON_PATCH, ops),
    }


@pytest.mark.parametrize("how", ["put", "patch", "merge-patch", "json-patch"])
def test_guard_reads_what_kinto_writes_under_every_charset_and_encoding(app, steps, how):
    """Finding 2: a body the guard can't read as Kinto does is refused, nothing stored."""
    record = shared_step(app)
    before = stored(app, record["id"])
    method, media_type, body = _writes(record)[how]
    text = json.dumps(body, ensure_ascii=False)
    url = f"{STEPS}/records/{record['id']}"
    patch_type = how in ("merge-patch", "json-patch")
    encodings = ENCODINGS
    if patch_type:  # a patch type is its Content-Type
        encodings = {k: v for k, v in ENCODINGS.items() if v[1] is not None}

    for encoding, (_, params, _, status) in encodings.items():
        if patch_type and params:
            status = 415  # Kinto reads a patch type with parameters as another type
        response = send(app, method, url, media_type, text, encoding, REVIEWER)

        assert response.status_int == status, (encoding, response.text)
        assert response.json["code"] == status and "errno" in response.json, encoding
        if status == 403:
            assert response.json["errno"] == 121
            assert response.json["details"]["name"] in ("status", "subject", "reviewer")
        assert stored(app, record["id"]) == before, encoding


@pytest.mark.parametrize("media_type", [MERGE_PATCH, JSON_PATCH])
@pytest.mark.parametrize("params", ["; charset=utf-8", ";charset=utf-8", "; x=y"])
def test_guard_refuses_patch_types_kinto_reads_otherwise(app, steps, media_type, params):
    """Kinto merges or JSON-patches only when the whole header is that type: with parameters
    it reads the body as plain JSON (a merge's ``null`` is stored) or answers 500."""
    record = shared_step(app)
    before = stored(app, record["id"])
    body = {"data": {"reviewer": None, "note": "x"}}
    if media_type == JSON_PATCH:
        body = [{"op": "remove", "path": "/data/reviewer"}]

    response = app.patch(
        f"{STEPS}/records/{record['id']}",
        json.dumps(body),
        headers={**REVIEWER, "Content-Type": media_type + params},
        status=415,
    )

    assert response.json["details"][0]["name"] == "Content-Type"
    assert stored(app, record["id"]) == before


@pytest.mark.parametrize("media_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_guard_refuses_media_types_kinto_does_not_route(app, steps, media_type):
    record = shared_step(app)
    before = stored(app, record["id"])
    app.put(
        f"{STEPS}/records/{record['id']}",
        json.dumps({"data": {**record, "reviewer": MALLORY}}),
        headers={**REVIEWER, "Content-Type": media_type},
        status=415,
    )
    assert stored(app, record["id"]) == before


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "trailing-nul", "gzip"])
def test_record_create_permission_cannot_designate_under_another_charset(
    app, steps, waiting, workflows, encoding
):
    """Finding 2: a ``record:create`` user designated an activity in latin-1."""
    activity, execution = waiting()
    stranger = user_id(app, STRANGER)
    app.patch_json(STEPS, {"permissions": {"record:create": [stranger]}}, headers=ADMIN)
    count = records_count(app)
    text = json.dumps({"data": {"activityArn": activity, "note": "é"}}, ensure_ascii=False)

    response = send(app, "POST", f"{STEPS}/records", "application/json", text, encoding, STRANGER)

    assert response.status_int == ENCODINGS[encoding][3]
    assert records_count(app) == count
    assert workflows.status(execution) == "RUNNING"


def test_batch_requests_are_guarded_as_requests_are(app, steps):
    """Finding 2, batch: a batch is read as Kinto reads it (its sub-requests are sent again
    as UTF-8 JSON); each sub-request is guarded, whatever headers it names."""
    record = shared_step(app)
    before = stored(app, record["id"])
    url = f"{STEPS}/records/{record['id']}"
    change = {"data": {"reviewer": [ALICE, MALLORY]}}
    latin = {"Content-Type": "application/json; charset=latin-1"}

    # The batch itself in latin-1, non-ASCII: Kinto reads it; its sub-request is refused.
    note = {"data": {**change["data"], "note": "é"}}
    batch = {"requests": [{"method": "PATCH", "path": url, "body": note}]}
    response = app.post(
        "/batch",
        json.dumps(batch, ensure_ascii=False).encode("latin-1"),
        headers={**REVIEWER, **latin},
    )
    ((status, body),) = [(r["status"], r["body"]) for r in response.json["responses"]]
    assert (status, body["details"]["name"]) == (403, "reviewer")
    # Sub-requests naming a charset, a coding, a patch type with parameters.
    requests = [
        {"method": "PATCH", "path": url, "body": change, "headers": latin},
        {"method": "PUT", "path": url, "body": change, "headers": {"Content-Encoding": "gzip"}},
        {
            "method": "PATCH",
            "path": url,
            "body": {"data": {"reviewer": None}},
            "headers": {"Content-Type": MERGE_PATCH + "; charset=utf-8"},
        },
        {"method": "PATCH", "path": url, "body": {"permissions": {"write": [EVERYONE]}}},
    ]
    statuses = [status for status, _ in batched(app, requests)]
    assert statuses == [403, 415, 403, 403]
    assert stored(app, record["id"]) == before


def test_refused_writes_mail_and_answer_nothing(
    app_factory, mailbox, callback, workflows, emulator, start_worker
):
    """Finding 2 end to end, with mail and links on: after the writes refused for their
    charset or encoding, the step is as its author posted it, nobody new is mailed, the
    execution still waits, and Step Functions heard of nothing."""
    app = app_factory(**mail_settings(mailbox))
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {}, headers=ADMIN)
    token, execution = callback()
    start_worker(app)
    record = shared_step(app, {**STEP, "taskToken": token})
    mailbox.wait(1, ALICE)
    before = stored(app, record["id"])
    emulator.reset_calls()
    url = f"{STEPS}/records/{record['id']}"

    for how, (method, media_type, body) in _writes(record).items():
        text = json.dumps(body, ensure_ascii=False)
        for encoding in ("latin-1", "cp500", "utf-16", "gzip-latin-1", "trailing-nul"):
            response = send(app, method, url, media_type, text, encoding, REVIEWER)
            assert response.status_int in (403, 415), (how, encoding)
            assert stored(app, record["id"]) == before, (how, encoding)

    # The author then asks Bob on another step: his mail comes, and none to Mallory (whose
    # notice would have been due earlier), none again to Alice.
    shared_step(app, {"subject": "Another", "reviewer": BOB})
    mailbox.wait(1, BOB)
    assert mailbox.to(MALLORY) == []
    assert len(mailbox.to(ALICE)) == 1
    assert stored(app, record["id"])[0].get("status", "UNANSWERED") == "UNANSWERED"
    assert not [c for c in emulator.calls if c.startswith("SendTask")]
    assert workflows.status(execution) == "RUNNING"


# --- 6. Authors own what reviewers are asked ------------------------------------------------

CHANGED = {
    "subject": "Pay Mallory",
    "input": {"amount": 1_000_000},
    "reviewer": [ALICE, MALLORY],
    "deadline": "2200-01-01T00:00:00Z",
}
HOWS = ["put", "patch", "merge-patch", "json-patch", "batch"]


def write(app, how, url, record, data=None, permissions=None, headers=REVIEWER, status="*"):
    """Write ``data`` (fields) and/or ``permissions`` as ``how`` says; ``(status, body)``."""
    body = {}
    if data is not None:
        body["data"] = {**record, **data} if how == "put" else data
    if permissions is not None:
        body["permissions"] = permissions
    if how == "put":
        response = app.put_json(url, body, headers=headers, status=status)
    elif how == "patch":
        response = app.patch_json(url, body, headers=headers, status=status)
    elif how == "merge-patch":
        merge = {**headers, "Content-Type": MERGE_PATCH}
        response = app.patch(url, json.dumps(body), headers=merge, status=status)
    elif how == "json-patch":
        ops = [{"op": "add", "path": f"/data/{k}", "value": v} for k, v in (data or {}).items()]
        for perm, principals in (permissions or {}).items():
            ops += [{"op": "add", "path": f"/permissions/{perm}/{p}"} for p in principals]
        patch = {**headers, "Content-Type": JSON_PATCH}
        response = app.patch(url, json.dumps(ops), headers=patch, status=status)
    else:
        ((code, result),) = batched(app, [{"method": "PATCH", "path": url, "body": body}], headers)
        return code, result
    return response.status_int, response.json


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("field", list(CHANGED))
def test_reviewer_cannot_change_what_others_are_asked(app, steps, field, how):
    """Finding 6: ``subject`` and ``input`` are shown to co-reviewers (mails, link pages):
    like ``reviewer`` and ``deadline``, only the step's author changes them."""
    record = shared_step(app)
    before = stored(app, record["id"])
    url = f"{STEPS}/records/{record['id']}"

    status, body = write(app, how, url, record, {field: CHANGED[field]})

    assert (status, body["errno"], body["details"]["name"]) == (403, 121, field)
    assert field in body["message"]
    assert stored(app, record["id"]) == before
    # The author may, the same way.
    status, body = write(app, how, url, record, {field: CHANGED[field]}, headers=ADMIN)
    assert status == 200
    assert stored(app, record["id"])[0][field] == CHANGED[field]


WIDENINGS = {
    "everyone-writes": {"write": [EVERYONE]},
    "authenticated-writes": {"write": ["system.Authenticated"]},
    "everyone-reads": {"read": [EVERYONE]},
}


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("widening", list(WIDENINGS))
def test_reviewer_cannot_widen_the_acl(app, steps, callback, workflows, emulator, widening, how):
    """Finding 6: a reviewer gave ``write`` to ``system.Everyone``: anonymous answers then
    reached AWS. The record's permissions are the author's: 403 ``permissions``."""
    token, execution = callback()
    record = shared_step(app, {**STEP, "taskToken": token})
    before = stored(app, record["id"])
    url = f"{STEPS}/records/{record['id']}"
    permissions = WIDENINGS[widening]
    if how == "put":  # kinto-admin's way: the whole ACL, one principal more
        permissions = {
            perm: before[1].get(perm, []) + principals for perm, principals in permissions.items()
        }
    emulator.reset_calls()

    status, body = write(app, how, url, record, permissions=permissions)

    assert (status, body["errno"], body["details"]["name"]) == (403, 121, "permissions")
    assert stored(app, record["id"]) == before
    app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, status=401)
    app.get(url, status=401)
    assert emulator.calls == []
    assert workflows.status(execution) == "RUNNING"


@pytest.mark.parametrize("how", HOWS)
def test_reviewer_cannot_remove_a_co_reviewer(app, steps, how):
    record = shared_step(app)
    before = stored(app, record["id"])
    url = f"{STEPS}/records/{record['id']}"
    other = user_id(app, OTHER_REVIEWER)
    if how == "json-patch":
        headers = {**REVIEWER, "Content-Type": JSON_PATCH}
        ops = [{"op": "remove", "path": f"/permissions/write/{other}"}]
        response = app.patch(url, json.dumps(ops), headers=headers, status=403)
        status, body = response.status_int, response.json
    else:
        status, body = write(
            app, how, url, record, permissions={"write": [user_id(app, REVIEWER)]}
        )

    assert (status, body["details"]["name"]) == (403, "permissions")
    assert stored(app, record["id"]) == before


def test_reviewer_kinto_admin_full_put_of_the_same_values_works(app, steps, callback):
    """kinto-admin saves with a PUT of everything it shows: the asked fields and the ACL as
    they are, one other field changed. So do a PATCH and a PUT without permissions, and a PUT
    that leaves the reviewer himself out (Kinto makes the writer an owner anyway)."""
    token, _ = callback()
    record = shared_step(app, {**STEP, "taskToken": token})
    data, acl = stored(app, record["id"])
    url = f"{STEPS}/records/{record['id']}"
    me = user_id(app, REVIEWER)

    app.put_json(url, {"data": {**data, "note": "a"}, "permissions": acl}, headers=REVIEWER)
    app.put_json(url, {"data": {**data, "note": "b"}}, headers=REVIEWER)
    app.patch_json(url, {"data": {"note": "c"}}, headers=REVIEWER)
    app.patch_json(url, {"data": {"note": "d"}, "permissions": acl}, headers=REVIEWER)
    without_me = {**acl, "write": [p for p in acl["write"] if p != me]}
    app.put_json(url, {"data": {**data, "note": "e"}, "permissions": without_me}, headers=REVIEWER)
    merge = {**REVIEWER, "Content-Type": MERGE_PATCH}
    app.patch(url, json.dumps({"data": {"note": "f", "subject": data["subject"]}}), headers=merge)

    now, now_acl = stored(app, record["id"])
    assert now == {**data, "note": "f", "last_modified": now["last_modified"]}
    assert now_acl == acl


def test_reviewer_through_a_group_still_edits_his_fields(app, steps):
    """A reviewer with write through a group: Kinto adds him to the record's writers on each
    write. That is Kinto's doing, not his: accepted."""
    me = user_id(app, REVIEWER)
    app.put_json(
        "/buckets/stepfunction/groups/reviewers", {"data": {"members": [me]}}, headers=ADMIN
    )
    group = "/buckets/stepfunction/groups/reviewers"
    body = {"data": STEP, "permissions": {"write": [group]}}
    record = app.post_json(f"{STEPS}/records", body, headers=ADMIN).json["data"]
    url = f"{STEPS}/records/{record['id']}"
    writers = permissions_of(app, record["id"])["write"]
    assert me not in writers

    app.patch_json(url, {"data": {"note": "seen"}}, headers=REVIEWER)
    app.put_json(url, {"data": {**stored(app, record["id"])[0], "note": "ok"}}, headers=REVIEWER)

    assert sorted(permissions_of(app, record["id"])["write"]) == sorted([*writers, me])
    status, body = write(app, "patch", url, record, permissions={"write": [EVERYONE]})
    assert (status, body["details"]["name"]) == (403, "permissions")


def test_record_create_permission_cannot_set_what_is_asked_nor_the_acl(app, steps):
    """A ``record:create`` user makes records of his own, not steps of the author's."""
    stranger = user_id(app, STRANGER)
    app.patch_json(STEPS, {"permissions": {"record:create": [stranger]}}, headers=ADMIN)
    count = records_count(app)
    for data, permissions, field in [
        ({"subject": "Pay me"}, None, "subject"),
        ({"input": {"amount": 1}}, None, "input"),
        ({"note": "x"}, {"write": [EVERYONE]}, "permissions"),
    ]:
        body = {"data": data, **({"permissions": permissions} if permissions else {})}
        response = app.post_json(f"{STEPS}/records", body, headers=STRANGER, status=403)
        assert response.json["details"]["name"] == field
    assert records_count(app) == count
    app.post_json(f"{STEPS}/records", {"data": {"note": "harmless"}}, headers=STRANGER)


def test_author_changes_what_is_asked_and_the_acl(app, steps):
    record = shared_step(app)
    url = f"{STEPS}/records/{record['id']}"
    app.patch_json(url, {"data": CHANGED}, headers=ADMIN)
    app.patch_json(url, {"permissions": {"read": [EVERYONE]}}, headers=ADMIN)
    data, acl = stored(app, record["id"])
    assert {k: data[k] for k in CHANGED} == CHANGED
    assert acl["read"] == [EVERYONE]


# Bodies whose ACL Kinto computes in each of its ways: the guard predicts the same ACL.
ACL_WRITES = [
    ("PUT", "application/json", lambda r, o: {"data": r, "permissions": {"read": [o]}}),
    ("PATCH", "application/json", lambda r, o: {"permissions": {"read": [o], "write": None}}),
    ("PATCH", "application/json", lambda r, o: {"data": {"note": "n"}}),
    ("PATCH", MERGE_PATCH, lambda r, o: {"permissions": {"read": [o]}}),
    ("PATCH", MERGE_PATCH, lambda r, o: {"permissions": {"read": None}}),
    ("PATCH", JSON_PATCH, lambda r, o: [{"op": "add", "path": f"/permissions/read/{o}"}]),
    ("PATCH", JSON_PATCH, lambda r, o: [{"op": "remove", "path": f"/permissions/write/{o}"}]),
]


@pytest.mark.parametrize("method,media_type,make", ACL_WRITES)
def test_guard_predicts_the_acl_kinto_stores(app, steps, method, media_type, make):
    """The ACL the guard checks before a write is the one Kinto stores (its author writes)."""
    other, admin = user_id(app, OTHER_REVIEWER), user_id(app, ADMIN)
    body = {"data": STEP, "permissions": {"write": [admin, other], "read": [other]}}
    record = app.put_json(f"{STEPS}/records/r", body, headers=ADMIN).json["data"]
    data, acl = stored(app, "r")
    body = make(data, other)
    predicted = guard.proposed(method, media_type, body, data, acl, writer=admin)[1]

    app.request(
        f"{STEPS}/records/{record['id']}",
        method=method,
        body=json.dumps(body).encode(),
        headers={**ADMIN, "Content-Type": media_type},
    )

    assert {k: set(v) for k, v in stored(app, "r")[1].items() if v} == predicted


@pytest.mark.parametrize("backend", ["postgresql"])
def test_acl_is_checked_again_inside_the_transaction(app, steps, monkeypatch, backend):
    """Should the check before the write miss an ACL change, the one inside the write's
    transaction reads the ACL back from the permission backend and undoes it (PostgreSQL;
    the memory backend can't roll back, which is why the first check exists)."""
    record = shared_step(app)
    before = stored(app, record["id"])
    url = f"{STEPS}/records/{record['id']}"
    real = guard.proposed
    # A mirror of Kinto's ACL computation that missed the change: it predicts the old ACL.
    monkeypatch.setattr(guard, "proposed", lambda *a, **k: (real(*a, **k)[0], dict(a[4])))

    status, body = write(app, "patch", url, record, permissions={"write": [EVERYONE]})

    assert (status, body["details"]["name"]) == (403, "permissions")
    assert stored(app, record["id"]) == before
