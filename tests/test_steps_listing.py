"""The inbox's and all steps' search, sort, counts and pages; people as names; who may answer."""

import base64

import pytest
from kinto.core.testing import get_user_headers
from kinto.core.utils import encode64

from stepfunction import listing, people
from stepfunction.settings import Settings
from tests.conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    STRANGER,
    add_records,
    answer_url,
    permissions_of,
    post_step,
    user_id,
)


INBOX = STEPS + "/stepfunction/inbox"
ALL = STEPS + "/stepfunction/steps"
NOBODY = get_user_headers("nobody")
TOKEN = {"taskToken": "(stored)"}


def ids(response):
    return [record["id"] for record in response.json["data"]]


def follow(app, url, headers):
    """Every page's ids, following Next-Page."""
    pages = []
    while url:
        response = app.get(url, headers=headers)
        pages.append(ids(response))
        url = response.headers.get("Next-Page", "").replace("http://localhost/v1", "")
    return pages


@pytest.fixture
def deadlines(app, collection):
    """Pending steps with deadlines in both formats, and none; one answered."""
    writable = {"write": [user_id(app, REVIEWER)]}
    rows = [
        {"id": "later", "subject": "Pay Later", "deadline": "2030-01-02T00:00:00+01:00"},
        {"id": "none", "subject": "No deadline"},
        {"id": "epoch", "subject": "Pay now", "deadline": 1_800_000_000},  # 2027-01-15
        {"id": "sooner", "subject": "Sooner", "deadline": "2030-01-01T22:00:00Z"},
        {"id": "done", "subject": "Paid", "status": "SUCCEED", "deadline": 1},
    ]
    add_records(app, [({**TOKEN, **row}, writable) for row in rows])


def test_the_most_urgent_first_whatever_the_deadlines_format(app, deadlines):
    response = app.get(INBOX + "?_sort=deadline", headers=REVIEWER)
    # 2030-01-01T22:00Z is an hour before 2030-01-02T00:00+01:00 (23:00Z).
    assert ids(response) == ["epoch", "sooner", "later", "none"]
    assert response.json["total"] == 4
    every = app.get(ALL + "?_sort=deadline", headers=REVIEWER)
    assert ids(every) == ["epoch", "sooner", "later", "none", "done"]  # open steps first


def test_search_is_in_the_subject_whatever_the_case(app, deadlines):
    response = app.get(INBOX + "?q=pAY", headers=REVIEWER)
    assert ids(response) == ["epoch", "later"]  # newest first
    assert response.json["total"] == 2
    assert ids(app.get(ALL + "?q=pay&_sort=last_modified", headers=REVIEWER)) == ["later", "epoch"]
    for hostile in ("%", "_", ".*", "(", "\\", "'; DROP TABLE objects; --"):
        assert ids(app.get(INBOX, params={"q": hostile}, headers=REVIEWER)) == []


def test_pages_cover_each_sort_once(app, collection):
    writable = {"write": [user_id(app, REVIEWER)]}
    rows = []
    for i in range(7):
        rows.append(({"id": f"s{i}", "deadline": 2_000_000_000 - i, **TOKEN}, writable))
        rows.append(({"id": f"d{i}", "status": "FAIL"}, writable))
    add_records(app, rows)
    for sort in listing.SORTS:
        pages_cover_once(app, sort)


def pages_cover_once(app, sort):
    whole = ids(app.get(f"{INBOX}?_sort={sort}&_limit=100", headers=REVIEWER))
    pages = follow(app, f"{INBOX}?_sort={sort}&_limit=3", REVIEWER)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sum(pages, []) == whole and sorted(whole) == [f"s{i}" for i in range(7)]
    if sort == listing.URGENT:
        assert whole == [f"s{i}" for i in reversed(range(7))]
    response = app.get(f"{INBOX}?_sort={sort}&_limit=3", headers=REVIEWER)
    assert response.json["total"] == 7


def test_all_steps_are_paged_by_the_server_with_what_the_user_may_read(app, collection):
    reviewer = user_id(app, REVIEWER)
    app.put_json(STEPS, {"permissions": {"read": []}}, headers=ADMIN)  # only the admin reads all
    rows = [({"id": f"r{i}", **TOKEN}, {"read": [reviewer]} if i % 2 else None) for i in range(9)]
    add_records(app, rows)
    pages = follow(app, ALL + "?_limit=2", REVIEWER)
    assert sum(pages, []) == ["r7", "r5", "r3", "r1"]
    assert app.get(ALL, headers=REVIEWER).json["total"] == 4
    assert app.get(ALL, headers=ADMIN).json["total"] == 9
    assert app.get(ALL, headers=STRANGER).json == {"data": [], "total": 0, "steps": {}}
    assert app.get(ALL + "?id=r2", headers=REVIEWER).json["data"] == []


def test_who_may_answer_and_why_nobody_can(app, collection):
    reviewer = user_id(app, REVIEWER)
    rows = [
        ({"id": "mine", **TOKEN}, {"write": [reviewer]}),
        ({"id": "read", **TOKEN}, {"read": [reviewer], "write": [user_id(app, STRANGER)]}),
        ({"id": "unlinked"}, {"write": [reviewer]}),
        ({"id": "odd", "activityArn": "arn:aws:states:us-west-2:1:activity:x"}, None),
        ({"id": "done", "status": "SUCCEED", **TOKEN}, {"write": [reviewer]}),
    ]
    add_records(app, rows)
    steps = app.get(ALL, headers=REVIEWER).json["steps"]
    assert {i: s["mayAnswer"] for i, s in steps.items()} == {
        "mine": True,
        "read": False,
        "unlinked": False,
        "odd": False,
        "done": False,
    }
    assert "no task token and no activity" in steps["unlinked"]["problem"]
    assert "activityArn is not valid" in steps["odd"]["problem"]
    assert steps["mine"]["problem"] is None and steps["done"]["problem"] is None
    assert steps["read"]["reviewers"] == []  # its ACL is its writers' to see, as in Kinto
    admin = app.get(ALL, headers=ADMIN).json["steps"]
    assert admin["read"]["mayAnswer"] is True  # the author may write every step
    assert admin["read"]["reviewers"] == ["a Basic auth user"]
    assert app.get(INBOX, headers=REVIEWER).json["steps"].keys() == {"mine", "unlinked"}


def test_an_activity_the_worker_receives_waits_for_the_workflow():
    settings = Settings.from_settings({"stepfunction.activities": ACTIVITY})

    class Client:
        def region_for(self, step):
            return "us-west-2"

    waiting = {"activityArn": ACTIVITY}
    assert "has not reached this step yet" in listing.problem(waiting, settings, Client())
    assert listing.problem({**waiting, **TOKEN}, settings, Client()) is None
    other = {"activityArn": ACTIVITY.replace("Approve", "Other")}
    assert "fetch_activities" in listing.problem(other, settings, Client())


ACTIVITY = "arn:aws:states:us-west-2:123456789012:activity:Approve"


def basic(user, password="secret"):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_people_are_named_never_hashed(app, collection, callback):
    reviewer, stranger = user_id(app, REVIEWER), user_id(app, STRANGER)
    shared = {"write": [reviewer, stranger, "system.Authenticated", "/buckets/b/groups/leads"]}
    add_records(app, [({"id": "shared", **TOKEN}, shared)])
    token, _ = callback(timeout=30)
    post_step(app, {"subject": "Answer me", "taskToken": token}, record_id="step")

    before = app.get(ALL + "?id=shared", headers=REVIEWER).json["steps"]["shared"]
    assert before["reviewers"] == ["you", "a Basic auth user", "any signed-in user", "group leads"]
    app.get(INBOX, headers=STRANGER)  # the stranger signs in: its name is recorded
    after = app.get(ALL + "?id=shared", headers=REVIEWER).json["steps"]["shared"]
    assert after["reviewers"] == ["you", "any signed-in user", "group leads", "stranger"]

    app.post_json(answer_url("step"), {"answer": "SUCCEED"}, headers=REVIEWER)
    assert app.get(ALL + "?id=step", headers=REVIEWER).json["steps"]["step"]["answeredBy"] == "you"
    by_admin = app.get(ALL, headers=ADMIN).json
    assert by_admin["steps"]["step"]["answeredBy"] == "reviewer"
    assert by_admin["steps"]["step"]["reviewers"] == ["reviewer"]  # the author is not asked
    # What is shown is names; ``names`` maps the principals of votes to them (its keys are
    # the principals the record's ``votes`` already hold, for the dashboard to look up).
    shown = {
        k: {f: v for f, v in about.items() if f != "names"}
        for k, about in by_admin["steps"].items()
    }
    assert "basicauth:" not in str(shown)
    assert all(
        "basicauth:" not in str(list(about.get("names", {}).values()))
        for about in by_admin["steps"].values()
    )
    assert permissions_of(app, "step")["write"] == sorted([user_id(app, ADMIN), reviewer])


def test_a_name_is_the_users_own_and_follows_it(app, collection):
    """Only one's own credentials name one's principal; a new name replaces the old one."""
    add_records(app, [({"id": "s", **TOKEN}, {"write": [user_id(app, basic("ada", "pw"))]})])
    app.get(INBOX, headers=basic("ada", "pw"))
    app.get(INBOX, headers=basic("mallory", "other"))  # another principal altogether
    named = app.get(ALL + "?id=s", headers=ADMIN).json["steps"]["s"]["reviewers"]
    assert named == ["ada"]
    hostile = basic("<b>\u202eada\x00</b>" + "x" * 500, "pw2")
    add_records(app, [({"id": "h", **TOKEN}, {"write": [user_id(app, hostile)]})])
    app.get(INBOX, headers=hostile)  # control characters out, 100 characters at most
    named = app.get(ALL + "?id=h", headers=ADMIN).json["steps"]["h"]["reviewers"]
    assert named == [("<b>ada</b>" + "x" * 500)[:100]]


HOSTILE = [
    "_sort=subject",
    "q=" + "x" * 201,
    "_sort=deadline&_token=" + encode64('{"last_modified": 1}'),
    "_sort=deadline&_token=" + encode64('{"sort": "deadline", "after": [1, 2]}'),
    "_sort=deadline&_token=" + encode64('{"sort": "deadline", "after": "x"}'),
    "_sort=last_modified&_token=" + encode64('{"sort": "deadline", "after": [1, "a"]}'),
    "_sort=last_modified&_token=" + encode64('{"sort": "last_modified", "after": [1e400, "a"]}'),
    "_token=" + encode64('{"sort": "deadline", "after": [false, false, 1, 1, "a"]}'),
]


def test_hostile_queries_are_refused_in_kintos_format(app, collection):
    for url, query in ((url, query) for url in (INBOX, ALL) for query in HOSTILE):
        response = app.get(f"{url}?{query}", headers=REVIEWER, status=400)
        assert (response.json["code"], response.json["errno"]) == (400, 107), query


def test_anonymous_users_get_401_and_other_collections_404(app, collection):
    for url in (INBOX, ALL):
        assert app.get(url, status=401).json["errno"] == 104
        other = url.replace("manual_steps", "other")
        assert app.get(other, headers=REVIEWER, status=404).json["errno"] == 111


def test_sort_keys_and_their_shapes():
    record = {"id": "a", "last_modified": 5, "deadline": "2030-01-01T00:00:00Z"}
    key = listing.sort_key(record, listing.URGENT)
    assert key == [False, False, 1893456000.0, 5, "a"]
    assert listing.valid_key(key, listing.URGENT)
    assert listing.sort_key({"id": "b", "last_modified": 5}, listing.URGENT)[:2] == [False, True]
    assert listing.sort_key(record, listing.NEWEST) == [-5, "a"]
    assert listing.valid_key([5, "a"], listing.OLDEST)
    for bad in ([True, "a"], [5], [5, 6], None, [5.5, "a"]):
        assert not listing.valid_key(bad, listing.OLDEST)


def test_how_principals_are_shown():
    assert people.show("basicauth:abc", me="basicauth:abc") == "you"
    assert people.show("account:ada") == "ada"
    assert people.show("link:ada@example.com") == "ada@example.com"
    assert people.show("system.Everyone") == "anyone"
    assert people.show("/buckets/b/groups/leads") == "group leads"
    assert people.show("basicauth:6eea0123", recorded="ada") == "ada"
    assert people.show("basicauth:6eea0123") == "a Basic auth user"
    assert people.show("google:1234") == "a google user"
