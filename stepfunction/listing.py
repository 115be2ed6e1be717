"""Search, sort and pages of steps, and what a reviewer needs to know of each (``describe``).

Sorts: ``-last_modified`` (newest first: the storage sorts and pages), ``last_modified``
(oldest first) and ``deadline`` (the most urgent first: unanswered steps before the others,
the soonest deadline first, those with none last, then the oldest first). A deadline is RFC
3339 or epoch seconds, which no storage sorts together: those sorts and the search (``q``, in
the subject, whatever the case) run here on the matching records (for the inbox: the
unanswered ones the user may answer), at most ``storage_max_fetch_size`` of them.
"""

import math

from stepfunction import people, records
from stepfunction.addresses import ascii_address, deadline_seconds
from stepfunction.schema import ANSWERS, TIMED_OUT, UNANSWERED, check_record


NEWEST, OLDEST, URGENT = "-last_modified", "last_modified", "deadline"
SORTS = (NEWEST, OLDEST, URGENT)
MAX_QUERY = 200


def subject_text(record):
    subject = record.get("subject")
    if isinstance(subject, list) and all(isinstance(s, str) for s in subject):
        return ", ".join(subject)
    return subject if isinstance(subject, str) else ""


def matches(record, query):
    return query.casefold() in subject_text(record).casefold()


def sort_key(record, sort):
    """A JSON-able key (a list) that orders the records in ``sort`` (ascending)."""
    modified = record["last_modified"]
    if sort == URGENT:  # the open steps first
        due = deadline_seconds(record.get("deadline"))
        closed = status_of(record) != UNANSWERED
        return [closed, due is None, due or 0, modified, record["id"]]
    return [-modified if sort == NEWEST else modified, record["id"]]


def valid_key(key, sort):
    """Whether ``key`` (from a page token) has the shape of ``sort_key``'s for ``sort``."""
    shape = (bool, bool, (int, float), int, str) if sort == URGENT else (int, str)
    if not isinstance(key, list) or len(key) != len(shape):
        return False
    for value, types in zip(key, shape, strict=True):
        if isinstance(value, bool) != (types is bool) or not isinstance(value, types):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
    return True


def page_after(records, sort, query, after, limit):
    """The page of ``records`` matching ``query`` in ``sort`` order, after the key ``after``
    (None: the first page); its records, whether more follow, and how many match in all."""
    matching = [r for r in records if not query or matches(r, query)]
    matching.sort(key=lambda r: sort_key(r, sort))
    if after is not None:
        matching_after = [r for r in matching if sort_key(r, sort) > after]
    else:
        matching_after = matching
    return matching_after[:limit], len(matching_after) > limit, len(matching)


def status_of(record):
    status = record.get("status", UNANSWERED)
    return status if status in (*ANSWERS, TIMED_OUT) else UNANSWERED


def problem(record, settings, client):
    """Why a pending step can't be answered, in a reviewer's words, or None."""
    step, problems = check_record(record)
    if problems:
        if "record" in problems:
            return (
                "This step is not linked to a workflow yet (it has no task token and no "
                "activity). Ask whoever set up this step to link it."
            )
        fields = ", ".join(sorted(problems))
        return f"This step's {fields} is not valid. Ask whoever set up this step to correct it."
    try:
        client.region_for(step)
    except ValueError:
        return "This step names an AWS region that does not exist. Ask whoever set it up."
    activity = step.get("activityArn")
    if step.get("taskToken") or not activity:
        return None
    if activity in settings.activities:
        return (
            "The workflow has not reached this step yet: it can be answered once Step "
            "Functions hands it over. Refresh later."
        )
    if not settings.may_fetch(activity):
        return (
            "This server does not fetch this step's task from Step Functions (its activity is "
            "not in stepfunction.fetch_activities). Ask the server's administrator."
        )
    return None


def _you_first(name):
    return (name != "you", name.casefold())


def describe(request, page, writable):
    """By record id: who is asked and who answered (names), whether the user may answer it
    now, why nobody can, and the names of who voted or delegated (``names``)."""
    if not page:
        return {}
    bucket_id, collection_id = request.context.ids
    settings = request.registry.stepfunction_settings
    client = request.registry.stepfunction_client
    writers = records.record_writers(request, bucket_id, collection_id, [r["id"] for r in page])
    authors = records.author_principals(request, bucket_id, collection_id)
    answers = {r["id"]: r.get("answer") for r in page}
    by = {i: a.get("by") for i, a in answers.items() if isinstance(a, dict)}
    everyone = set().union(*writers.values()) | {b for b in by.values() if isinstance(b, str)}
    voters = {r["id"]: voters_of(r) for r in page}
    names = people.names(
        request, everyone - authors | set(by.values()) - {None} | set().union(*voters.values())
    )
    described = {}
    for record in page:
        record_id = record["id"]
        may_write = writable is None or record_id in writable
        # As Kinto, which shows a record's ACL to its writers only.
        acl = writers[record_id] - authors if may_write else ()
        asked = sorted((names[p] for p in acl), key=_you_first)
        reviewer = record.get("reviewer")
        addresses = reviewer if isinstance(reviewer, list) else [reviewer]
        asked += [a for a in addresses if isinstance(a, str) and a and a not in asked]
        pending = status_of(record) == UNANSWERED
        why = problem(record, settings, client) if pending else None
        described[record_id] = {
            "reviewers": asked,
            "answeredBy": names.get(by.get(record_id)),
            "mayAnswer": pending and may_write and why is None,
            "problem": why,
            "names": {p: names[p] for p in voters[record_id]},
        }
    return described


def voters_of(record):
    """The principals (not the addresses) of a record's votes, delegations and escalation,
    to be shown as names."""
    entries = [e for e in (record.get("votes") or []) if isinstance(e, dict)]
    handed = [e for e in (record.get("delegations") or []) if isinstance(e, dict)]
    found = [e.get("by") for e in entries]
    found += [e.get(k) for e in handed for k in ("from", "to")]
    escalated = record.get("escalated")
    if isinstance(escalated, dict) and isinstance(escalated.get("to"), list):
        found += escalated["to"]
    return {p for p in found if isinstance(p, str) and ascii_address(p) is None}
