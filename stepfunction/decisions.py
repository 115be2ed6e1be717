"""Decisions made by several people: votes, a quorum of approvals, one veto, no self-approval.

Every answer (the endpoint's, a link's) is one vote, kept in the record's ``votes`` field
(``[{"by", "answer", "at", "comment"}]``, written by the plugin alone):

- the requester's answers are refused (403) when the step says ``selfApproval: false``;
- a rejection fails the step at once (``answer.Answer``, its reason the failure's cause);
- below ``quorum`` distinct approvals, an approval is recorded and answered 202, nothing
  sent; the same person approving again changes nothing (200);
- the ``quorum``-th approval sends SendTaskSuccess, the approvals in its output.

A vote's read-modify-write runs under the record's lock (``records.record_lock``: a
PostgreSQL advisory lock, across processes), and so does the quorum-th approval's send and
write: a concurrent approval waits, then finds the step answered. Each person counts once,
and the step is sent once. Steps of quorum 1 are answered as before (no lock across the send).
"""

import datetime

from kinto.core.errors import ERRORS
from pyramid import httpexceptions

from stepfunction import durable, records
from stepfunction.decision_fields import (
    VOTES,
    approvals_of,
    decision_of,
    is_requester,
    progress_text,
    same_person,
    votes_of,
)
from stepfunction.schema import ANSWERS, FAIL, SUCCEED, UNANSWERED, check_record


__all__ = ["approvals_of", "decide", "progress_text", "votes_of"]
from stepfunction.answer import Answer, Answered
from stepfunction.errors import bad_record, error


def now():
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


class AlreadyVoted(Answered):
    """This person's approval is already counted: nothing changes (200)."""


def output_with(output, approvals):
    """What SendTaskSuccess sends at the quorum: the last approver's output, an object, with
    ``approvals``: ``[{"by", "at", "comment"}]`` (a non-object output as ``{"output": …}``)."""
    shown = [{k: a[k] for k in ("by", "at", "comment") if k in a} for a in approvals]
    base = dict(output) if isinstance(output, dict) else {"output": output}
    return {**base, "approvals": shown}


class Vote(Answer):
    """An answer that is one person's vote: kept in ``votes`` when the step closes with it."""

    def __init__(self, request, ids, body, by):
        super().__init__(request, ids, body, by)
        self.vote = {"by": by, "answer": self.answer, "at": now()}
        if body.get("comment"):
            self.vote["comment"] = body["comment"]

    def audit(self):
        audit = super().audit()
        if "comment" in self.vote:
            audit["comment"] = self.vote["comment"]
        return audit

    def write(self, status, audit, force):
        """As ``Answer.write``, with this vote added to ``votes`` when it closes the step."""

        def work():
            fresh = records.read_record(self.request, *self.ids)
            if not force and (fresh is None or fresh.get("status", UNANSWERED) in ANSWERS):
                return fresh
            changes = {"status": status}
            if audit:
                changes["answer"] = audit
            if status == self.answer and audit and audit.get("by") == self.by:
                votes = votes_of(fresh)
                if not any(v == self.vote for v in votes):
                    changes[VOTES] = [*votes, self.vote]
            updated = records.write_record(self.request, *self.ids, changes, savepoint=False)
            records.close_task(self.request, self.uri, status, self.task)
            return updated

        return durable.write(self.request, self.uri, work)


def refuse_self_approval(record, by, principals):
    decision = decision_of(record)
    if decision.self_approval or not is_requester(decision.requester, by, principals):
        return
    raise error(
        httpexceptions.HTTPForbidden,
        ERRORS.FORBIDDEN,
        "You requested this step, and it may not be answered by its requester "
        "(selfApproval is false): another reviewer must answer it.",
    )


def decide(request, ids, body, by, record, task, principals=()):
    """Answer the step ``record`` as ``by``, one vote: a response body, or an error response
    (returned: its writes are committed), or raises an HTTP error or ``Answered``."""
    if record is not None:
        refuse_self_approval(record, by, principals)
    vote = Vote(request, ids, body, by)
    if record is None or body["answer"] == FAIL or decision_of(record).quorum <= 1:
        if record is not None and body["answer"] == SUCCEED:
            vote.body = with_approvals(vote, record, [vote.vote])
        return vote(record, task)
    uri = records.record_uri(*ids)
    with records.record_lock(request, uri):
        fresh, task = records.read_step(request, *ids)
        if fresh is None:
            return vote(fresh, task)
        refuse_self_approval(fresh, by, principals)  # the author may have changed it since
        _, problems = check_record(fresh)
        if problems:
            raise bad_record(problems)
        status = fresh.get("status", UNANSWERED)
        if status != UNANSWERED:
            vote.closed(status, fresh)
            return vote(fresh, task)  # timed out, or a record that can't be answered: says why
        approvals = approvals_of(fresh)
        quorum = decision_of(fresh).quorum
        mine = next((a for a in approvals if same_person(a.get("by"), by)), None)
        if mine is not None and len(approvals) < quorum:
            raise AlreadyVoted({"data": fresh})
        if mine is None:
            approvals.append(vote.vote)
        if len(approvals) < quorum:
            updated = record_vote(request, ids, vote.vote)
            request.response.status_code = 202
            return {"data": updated}
        # The quorum: sent now, under the lock (a concurrent approval waits, then finds the
        # step answered). ``mine``: this person's approval was counted, its send not done.
        if mine is not None:
            vote.vote = mine
        vote.body = with_approvals(vote, fresh, approvals)
        return vote(fresh, task)


def with_approvals(vote, record, approvals):
    """The body to send: the approvals added to its output, unless the step is a plain one
    (no ``quorum`` field, and no comment)."""
    plain = "quorum" not in record and not any(a.get("comment") for a in approvals)
    if plain:
        return vote.body
    return {**vote.body, "output": output_with(vote.body["output"], approvals)}


def record_vote(request, ids, entry):
    """Add ``entry`` to the record's ``votes`` (the caller holds the record's lock)."""
    uri = records.record_uri(*ids)

    def work():
        fresh = records.read_record(request, *ids)
        votes = [*votes_of(fresh), entry]
        changes = {VOTES: votes, "status": UNANSWERED}  # said, for the vote's response
        return records.write_record(request, *ids, changes, savepoint=False)

    return durable.write(request, uri, work)
