"""The fields that say how a step is decided, and by whom: pure functions, no I/O.

``quorum`` (distinct approvals needed, 1 to 20), ``requester`` (who asked: a principal or an
address), ``selfApproval`` (whether the requester may answer), ``delegation`` (whether a
reviewer may hand the step on), ``escalateAfter`` (seconds) and ``escalateTo`` (addresses or
principals). The step's author sets them (the guard refuses anyone else); the worker takes
them from a task's input like any other field, and a task whose fields are wrong is refused.
"""

import re
from typing import NamedTuple

import colander

from stepfunction.addresses import ascii_address
from stepfunction.schema import MAX_QUORUM, SUCCEED


# A person's principal: ``account:alice``, ``basicauth:…``, ``openid:…``, or a group. Never a
# ``system.`` principal (everyone, every signed-in user) nor a link's ``link:`` name.
PRINCIPAL = re.compile(r"(?!system\.|link:)[a-z][a-z0-9_.-]{0,30}:[^\s:][^\s]{0,200}")
GROUP = re.compile(r"/buckets/[a-zA-Z0-9_-]+/groups/[a-zA-Z0-9_-]+")
MAX_ESCALATE_SECONDS = 366 * 24 * 3600.0
MAX_PEOPLE = 20
LINK = "link:"
VOTES = "votes"


def is_principal(value):
    return isinstance(value, str) and bool(PRINCIPAL.fullmatch(value) or GROUP.fullmatch(value))


def is_person(value):
    """An address or a principal: whom a step may be escalated or delegated to."""
    return isinstance(value, str) and (ascii_address(value) is not None or is_principal(value))


def _person(node, value):
    if not is_person(value):
        raise colander.Invalid(node, f"{ascii(value)[:80]} is neither an address nor a principal")


def _people(node, value):
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not 0 < len(values) <= MAX_PEOPLE:
        raise colander.Invalid(
            node, f"must be an address or principal, or a list of 1 to {MAX_PEOPLE}"
        )
    for item in values:
        _person(node, item)


def _integer(node, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUORUM:
        raise colander.Invalid(node, f"must be an integer from 1 to {MAX_QUORUM}")


def _boolean(node, value):
    if not isinstance(value, bool):
        raise colander.Invalid(node, "must be true or false")


def _seconds(node, value):
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not 0 < value <= MAX_ESCALATE_SECONDS:
        raise colander.Invalid(node, "must be a number of seconds, above 0, at most one year")


class _Raw(colander.SchemaType):
    """The JSON value as it is: the validators check its type."""

    def deserialize(self, node, cstruct):
        return cstruct


class DecisionFieldsSchema(colander.MappingSchema):
    quorum = colander.SchemaNode(_Raw(), missing=colander.drop, validator=_integer)
    requester = colander.SchemaNode(_Raw(), missing=colander.drop, validator=_person)
    selfApproval = colander.SchemaNode(_Raw(), missing=colander.drop, validator=_boolean)
    delegation = colander.SchemaNode(_Raw(), missing=colander.drop, validator=_boolean)
    escalateAfter = colander.SchemaNode(_Raw(), missing=colander.drop, validator=_seconds)
    escalateTo = colander.SchemaNode(_Raw(), missing=colander.drop, validator=_people)


def decision_problem(data):
    """``(field, why)`` of the first decision field of ``data`` that can't be stored, or None
    (absent or null is fine)."""
    present = {k: v for k, v in (data or {}).items() if v is not None}
    try:
        DecisionFieldsSchema(unknown="ignore").deserialize(present)
    except colander.Invalid as e:
        field, message = next(iter(e.asdict().items()))
        return field, f"{field} {message}"
    return None


class Decision(NamedTuple):
    quorum: int
    requester: str | None
    self_approval: bool
    delegation: bool
    escalate_after: float | None
    escalate_to: tuple


def decision_of(record, settings=None):
    """How ``record`` is decided, its fields' defaults (and the settings' ones) filled in."""
    record = record or {}

    def valid(field, check, default):
        value = record.get(field)
        try:
            check(None, value)
        except colander.Invalid:
            return default
        return value

    escalate_to = valid("escalateTo", _people, None)
    if escalate_to is None:
        escalate_to = getattr(settings, "escalate_to", ()) or ()
    escalate_to = (escalate_to,) if isinstance(escalate_to, str) else tuple(escalate_to)
    return Decision(
        quorum=valid("quorum", _integer, 1),
        requester=valid("requester", _person, None),
        self_approval=valid("selfApproval", _boolean, True),
        delegation=valid("delegation", _boolean, False),
        escalate_after=valid("escalateAfter", _seconds, getattr(settings, "escalate_after", None)),
        escalate_to=escalate_to,
    )


def identity(value):
    """Who an address or principal names: an address (lower case) when it names one (a
    link's ``link:<email>``, an account named by its address), else the principal."""
    value = value.removeprefix(LINK)
    if ascii_address(value):
        return value.lower()
    _, _, rest = value.partition(":")
    return rest.lower() if rest and ascii_address(rest) else value


def same_person(a, b):
    """Whether two addresses or principals name the same person (addresses: case aside)."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    return identity(a) == identity(b)


def is_requester(requester, by, principals=()):
    """Whether the answer of ``by`` (a user id, or ``link:<email>``), whose request carries
    ``principals``, is the requester's.

    A requester given as a principal is matched against the request's principals; one given
    as an address against a link's address, and against a principal whose id is that address
    (Kinto accounts named by their email address, as ``account:alice@example.com``).
    """
    if not requester:
        return False
    if same_person(requester, by):
        return True
    if ascii_address(requester):
        ids = {p.split(":", 1)[1].lower() for p in principals if ":" in p}
        return requester.lower() in ids
    return requester in set(principals)


def votes_of(record):
    return [v for v in (record or {}).get(VOTES) or [] if isinstance(v, dict)]


def approvals_of(record):
    """The distinct approvals of the record, first one of each person."""
    approvals = []
    for vote in votes_of(record):
        if vote.get("answer") != SUCCEED:
            continue
        if not any(same_person(vote.get("by"), a.get("by")) for a in approvals):
            approvals.append(vote)
    return approvals


def progress(record):
    """``(approvals so far, approvals needed)`` of a step."""
    return len(approvals_of(record)), decision_of(record).quorum


def progress_text(record):
    """ "1 of 2 approvals so far", or "" for a step decided by one answer."""
    count, quorum = progress(record)
    if quorum <= 1:
        return ""
    return f"{count} of {quorum} approvals so far"


def still_needed(record):
    """ "1 more approval needed" (or "2 more approvals needed")."""
    count, quorum = progress(record)
    left = max(0, quorum - count)
    return f"{left} more approval{'s' if left != 1 else ''} needed"
