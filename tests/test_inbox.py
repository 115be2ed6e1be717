"""GET …/stepfunction/inbox: the unanswered steps the user may answer, paged by the server."""

import pytest
from kinto.core.testing import get_user_headers
from kinto.core.utils import encode64

from stepfunction import records
from tests.conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    STRANGER,
    add_records,
    answer_url,
    post_step,
    user_id,
)


INBOX = STEPS + "/stepfunction/inbox"
NOBODY = get_user_headers("nobody")


def inbox_ids(app, headers, url=INBOX):
    return [record["id"] for record in app.get(url, headers=headers).json["data"]]


def all_pages(app, headers, url):
    """Every page's ids, following Next-Page."""
    pages = []
    while url:
        response = app.get(url, headers=headers)
        pages.append([record["id"] for record in response.json["data"]])
        url = response.headers.get("Next-Page", "").replace("http://localhost/v1", "")
    return pages


@pytest.fixture
def steps(app, collection):
    """Steps in every state: ``{name: id}``, created oldest first."""
    reviewer = user_id(app, REVIEWER)
    writable = {"write": [reviewer]}
    post_step(app, {"subject": "Mine, no status"}, record_id="mine")
    add_records(
        app,
        [
            ({"id": "unanswered", "status": "UNANSWERED", "taskToken": "(stored)"}, writable),
            ({"id": "succeeded", "status": "SUCCEED"}, writable),
            ({"id": "failed", "status": "FAIL"}, writable),
            ({"id": "timed-out", "status": "TIMED_OUT"}, writable),
        ],
    )
    readonly = {"data": {"subject": "Only read"}, "permissions": {"read": [reviewer]}}
    app.put_json(STEPS + "/records/readonly", readonly, headers=ADMIN)
    post_step(app, {"subject": "The stranger's"}, reviewer=STRANGER, record_id="strangers")
    return ["mine", "unanswered", "readonly", "strangers"]


def test_the_inbox_holds_the_pending_steps_the_user_may_write(app, steps):
    assert inbox_ids(app, REVIEWER) == ["unanswered", "mine"]  # newest first
    assert inbox_ids(app, STRANGER) == ["strangers"]
    assert inbox_ids(app, NOBODY) == []
    # The author may write them all: every pending one.
    assert inbox_ids(app, ADMIN) == ["strangers", "readonly", "unanswered", "mine"]


def test_the_inbox_shows_records_as_stored_never_a_token(app, steps):
    data = app.get(INBOX, headers=REVIEWER).json["data"]
    assert data[0] == {
        "id": "unanswered",
        "status": "UNANSWERED",
        "taskToken": "(stored)",
        "last_modified": data[0]["last_modified"],
    }
    assert data[1]["subject"] == "Mine, no status"


def test_the_inbox_narrowed_to_one_step_says_whether_the_user_may_answer_it(app, steps):
    assert inbox_ids(app, REVIEWER, INBOX + "?id=mine") == ["mine"]
    for other in ("readonly", "strangers", "succeeded", "missing"):
        assert inbox_ids(app, REVIEWER, INBOX + f"?id={other}") == []
    assert inbox_ids(app, ADMIN, INBOX + "?id=readonly") == ["readonly"]


def test_an_answered_step_leaves_the_inbox(app, collection, callback):
    token, _ = callback()
    post_step(app, {"subject": "Answer me", "taskToken": token}, record_id="step")
    post_step(app, {"subject": "Later"}, record_id="later")
    assert inbox_ids(app, REVIEWER) == ["later", "step"]
    assert token not in app.get(INBOX, headers=REVIEWER).text

    app.post_json(answer_url("step"), {"answer": "SUCCEED"}, headers=REVIEWER)
    assert inbox_ids(app, REVIEWER) == ["later"]


def test_a_write_through_a_group_or_every_user_counts(app, collection):
    reviewer = user_id(app, REVIEWER)
    group = {"data": {"members": [reviewer]}}
    app.put_json("/buckets/stepfunction/groups/reviewers", group, headers=ADMIN)
    shared = {"write": ["/buckets/stepfunction/groups/reviewers"]}
    anyone = {"write": ["system.Authenticated"]}
    add_records(app, [({"id": "group"}, shared), ({"id": "anyone"}, anyone)])
    assert inbox_ids(app, REVIEWER) == ["anyone", "group"]
    assert inbox_ids(app, STRANGER) == ["anyone"]


def test_records_of_other_collections_never_leak(app_factory):
    """The permission backend matches ``_`` of an id as any character (SQL LIKE): the
    collection ``manualXsteps`` must not give its records to ``manual_steps``."""
    app = app_factory(**{"stepfunction.collections": "stepfunction/manualXsteps"})
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    for name in ("manual_steps", "manualXsteps", "other"):
        app.put_json(f"/buckets/stepfunction/collections/{name}", {}, headers=ADMIN)
    lookalike = "/buckets/stepfunction/collections/manualXsteps"
    post_step(app, {"subject": "Not here"}, record_id="same", collection=lookalike)
    app.put_json(STEPS + "/records/same", {"data": {"subject": "Not writable"}}, headers=ADMIN)
    other = "/buckets/stepfunction/collections/other"
    post_step(app, {"subject": "No steps"}, record_id="odd", collection=other)

    assert inbox_ids(app, REVIEWER) == []
    assert inbox_ids(app, REVIEWER, lookalike + "/stepfunction/inbox") == ["same"]
    response = app.get(other + "/stepfunction/inbox", headers=REVIEWER, status=404)
    assert response.json["errno"] == 111


def test_anonymous_users_are_asked_to_authenticate(app, steps):
    response = app.get(INBOX, status=401)
    assert response.json["errno"] == 104
    assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize("headers", [REVIEWER, {}])
def test_a_collection_that_holds_no_steps_has_no_inbox(app, collection, headers):
    url = "/buckets/stepfunction/collections/other/stepfunction/inbox"
    response = app.get(url, headers=headers, status=404)
    assert (response.json["code"], response.json["errno"]) == (404, 111)


def test_a_missing_collection_has_an_empty_inbox(app):
    assert inbox_ids(app, REVIEWER) == []


def test_pages_cover_the_inbox_once_newest_first(app, collection):
    reviewer = user_id(app, REVIEWER)
    writable = {"write": [reviewer]}
    pending = [f"step{i}" for i in range(7)]
    rows = []
    for i, record_id in enumerate(pending):
        rows.append(({"id": record_id}, writable))
        rows.append(({"id": f"done{i}", "status": "SUCCEED"}, writable))  # between them
    add_records(app, rows)

    pages = all_pages(app, REVIEWER, INBOX + "?_limit=3")
    assert pages == [pending[6:3:-1], pending[3:0:-1], pending[:1]]
    # A last page that is exactly full says there is no next one.
    response = app.get(INBOX + "?_limit=7", headers=REVIEWER)
    assert "Next-Page" not in response.headers
    assert [r["id"] for r in response.json["data"]] == pending[::-1]
    # The author's pages too.
    assert sum(all_pages(app, ADMIN, INBOX + "?_limit=2"), []) == pending[::-1]


@pytest.mark.parametrize(
    "query",
    [
        "_limit=0",
        "_limit=-1",
        "_limit=abc",
        "_limit=1.5",
        "_limit=1e3",
        "_limit=99999999999999999999999999",
        "_token=garbage",
        "_token=%00",
        "_token=" + "A" * 500,
        "_token=" + encode64("[]"),
        "_token=" + encode64('{"last_modified": "1"}'),
        "_token=" + encode64('{"last_modified": true}'),
        "_token=" + encode64('{"last_modified": -1}'),
        "_token=" + encode64('{"last_modified": 1e400}'),
        "_token=" + encode64(f'{{"last_modified": {2**70}}}'),
        "_token=" + encode64('{"other": 1}'),
        "id=..%2Fx",
        "id=a%00",
        "id=a%0A",
    ],
)
def test_hostile_query_parameters_are_refused_in_kintos_format(app, steps, query):
    response = app.get(f"{INBOX}?{query}", headers=REVIEWER, status=400)
    assert (response.json["code"], response.json["errno"]) == (400, 107)
    assert response.json["details"][0]["location"] == "querystring"


MANY = 10_000


@pytest.fixture
def many_steps(app, collection):
    """10,000 records: one in five pending; the reviewer may write ten of them."""
    reviewer = user_id(app, REVIEWER)

    def row(i):
        data = {"id": f"r{i:05d}", "subject": f"Step {i}", "taskToken": "(stored)"}
        if i % 5:
            data["status"] = ("SUCCEED", "FAIL", "TIMED_OUT", "SUCCEED")[i % 5 - 1]
        elif i % 10:
            data["status"] = "UNANSWERED"
        permissions = {"write": [reviewer]} if i % 1000 in (0, 1) else None
        return data, permissions

    add_records(app, (row(i) for i in range(MANY)))
    return [f"r{i:05d}" for i in reversed(range(MANY)) if i % 5 == 0]  # pending, newest first


@pytest.fixture
def reads(app, monkeypatch):
    """How many records the storage backend returns, by call: ``[(method, count)]``."""
    storage = app.app.registry.storage
    calls = []
    for name in ("list_all", "count_all", "get_all"):
        original = getattr(storage, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            result = _original(*args, **kwargs)
            if kwargs.get("resource_name", args[0] if args else None) == "record":
                calls.append((_name, len(result) if isinstance(result, list) else result))
            return result

        monkeypatch.setattr(storage, name, counted)
    return calls


def listed(reads):
    """How many records each ``list_all`` returned (``count_all`` reads none)."""
    return [count for name, count in reads if name == "list_all"]


def test_the_first_page_of_10000_records_reads_that_page_only(app, many_steps, reads):
    response = app.get(INBOX + "?_limit=50", headers=ADMIN)
    assert [r["id"] for r in response.json["data"]] == many_steps[:50]
    assert "Next-Page" in response.headers
    assert listed(reads) == [51]  # the page, and one more to tell a next page
    assert ("count_all", len(many_steps)) in reads  # counted, not read

    reads.clear()
    response = app.get(INBOX, headers=REVIEWER)
    mine = [f"r{i:05d}" for i in range(MANY - 1000, -1, -1000)]  # i % 1000 == 0: pending
    assert [r["id"] for r in response.json["data"]] == mine
    assert "Next-Page" not in response.headers
    assert listed(reads) == [10]


def test_the_pages_of_10000_records_are_paged_by_the_server(app, many_steps, reads):
    pages = all_pages(app, ADMIN, INBOX + "?_limit=1000")
    assert sum(pages, []) == many_steps
    assert max(listed(reads)) == 1001


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_first_page_of_10000_records_is_a_few_sql_statements(app, many_steps):
    """On PostgreSQL: the statements of the request, and the rows they return."""
    from sqlalchemy import event

    engine = records.sql_engine(app.app.registry.storage)
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, cursor.rowcount))

    event.listen(engine, "after_cursor_execute", count)
    try:
        app.get(INBOX + "?_limit=50", headers=ADMIN)
    finally:
        event.remove(engine, "after_cursor_execute", count)
    selects = [(s, rows) for s, rows in statements if "FROM objects" in s]
    # The page (and one more), its count (one row), the names of its people (a row or none).
    assert [rows for _, rows in selects if rows > 1] == [51], statements
    assert len(selects) <= 5 and len(statements) <= 16, statements
