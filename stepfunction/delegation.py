"""POST .../records/{id}/stepfunction/delegate: a reviewer hands the step on to someone else.

``{"to": "<address or principal>", "comment": "…"}``, by a reviewer (write on the record) of a
pending step whose author allowed it (``delegation: true``). The delegate replaces the
delegator: his principal in the record's ``write`` (or, for an address, in ``reviewer``), and
the delegator's own principal and address leave them, so his mailed links stop working. A
delegate given an address is mailed at once (the address is new in ``reviewer``: the outbox's
notice is due now). The record keeps ``delegations: [{"from", "to", "at", "comment"}]``.

Refused (403) without ``delegation``, to oneself, to the requester when self-approval is off,
by a reviewer who already voted (his vote stays: the delegate would vote a second time), and by
a writer who is not a reviewer of the record itself (his write comes from the collection, or a
group: there is nothing of his to hand on).
"""

import logging

from kinto.core import Service
from kinto.core.authorization import DYNAMIC
from kinto.core.cornice.validators import colander_body_validator
from kinto.core.errors import ERRORS
from kinto.core.resource.schema import ErrorResponseSchema
from pyramid import httpexceptions

from stepfunction import durable, records
from stepfunction.addresses import ascii_address
from stepfunction.bodies import json_only
from stepfunction.contexts import StepContext
from stepfunction.decision_fields import decision_of, is_person, is_requester, same_person
from stepfunction.decisions import now, votes_of
from stepfunction.errors import conflict, error
from stepfunction.notices import reviewers_of
from stepfunction.schema import UNANSWERED, AnsweredResponseSchema, DelegateSchema


logger = logging.getLogger(__name__)

DELEGATIONS = "delegations"
RESPONSES = {
    "200": AnsweredResponseSchema(description="Delegated: the record as stored"),
    "400": ErrorResponseSchema(description="Invalid body"),
    "401": ErrorResponseSchema(description="Anonymous"),
    "403": ErrorResponseSchema(description="Not a reviewer, or this delegation is not allowed"),
    "404": ErrorResponseSchema(description="No such record, or not a steps collection"),
    "409": ErrorResponseSchema(description="The step is no longer pending"),
    "415": ErrorResponseSchema(description="Not a JSON body"),
}


class DelegateContext(StepContext):
    """Delegating is writing the record: ``write`` on it, checked by Kinto before the view."""

    required_permission = "write"


delegate = Service(
    name="stepfunction_delegate",
    description="Hand a manual step on to another reviewer",
    path=records.RECORD_PATH + "/stepfunction/delegate",
    factory=DelegateContext,
)


def forbidden(message):
    return error(httpexceptions.HTTPForbidden, ERRORS.FORBIDDEN, message)


def handed_on(record, acl, by, principals, to):
    """``(changes, write)``: the record's fields and ``write`` principals once ``by`` hands
    the step to ``to``; raises 403 when ``by`` has nothing of his own to hand on."""
    write = list(acl.get("write") or [])
    mine = [p for p in write if p == by]
    reviewers = reviewers_of(record)
    own_addresses = [a for a in reviewers if is_requester(a, by, principals)]
    if not mine and not own_addresses:
        raise forbidden(
            "You are not a reviewer of this step itself (your write comes from its collection "
            "or a group): there is nothing of yours to hand on."
        )
    write = [p for p in write if p not in mine]
    reviewers = [a for a in reviewers if a not in own_addresses]
    if ascii_address(to):
        if not any(same_person(to, a) for a in reviewers):
            reviewers.append(to)
    elif to not in write:
        write.append(to)
    changes = {}
    if own_addresses or ascii_address(to):
        changes["reviewer"] = reviewers
    return changes, write


@delegate.post(
    schema=DelegateSchema(),
    permission=DYNAMIC,
    content_type="application/json",
    validators=(json_only, colander_body_validator),
    response_schemas=RESPONSES,
)
def delegate_step(request):
    context = request.context
    ids, uri = context.ids, records.record_uri(*context.ids)
    by, principals = request.prefixed_userid, request.prefixed_principals
    to, comment = request.validated["to"].strip(), request.validated.get("comment")
    if not is_person(to):
        raise error(
            httpexceptions.HTTPBadRequest,
            ERRORS.INVALID_PARAMETERS,
            "to must be an email address or a principal (not a system. one)",
            [{"location": "body", "name": "to", "description": "not an address nor a principal"}],
        )

    def work():
        record = records.read_record(request, *ids)
        if record is None:
            raise error(httpexceptions.HTTPNotFound, ERRORS.INVALID_RESOURCE_ID, "No such step")
        decision = decision_of(record)
        if not decision.delegation:
            raise forbidden("This step may not be delegated (its delegation field is not true).")
        if record.get("status", UNANSWERED) != UNANSWERED:
            raise conflict(f"This step was already answered {record['status']}.")
        if same_person(to, by) or is_requester(to, by, principals):
            raise forbidden("You can't delegate a step to yourself.")
        if not decision.self_approval and same_person(to, decision.requester or ""):
            raise forbidden(
                "This step may not be answered by its requester (selfApproval is false): "
                "it can't be delegated to them."
            )
        if any(same_person(v.get("by"), by) for v in votes_of(record)):
            raise forbidden("You already voted on this step: it can't be handed on.")
        acl = request.registry.permission.get_object_permissions(uri)
        changes, write = handed_on(record, acl, by, principals, to)
        entry = {"from": by, "to": to, "at": now()}
        if comment:
            entry["comment"] = comment
        delegations = [d for d in record.get(DELEGATIONS) or [] if isinstance(d, dict)]
        changes[DELEGATIONS] = [*delegations, entry]
        return records.write_record(
            request, *ids, changes, savepoint=False, acl={"write": sorted(set(write))}
        )

    updated = durable.write(request, uri, work)
    logger.info("%s: delegated by %s", uri, by)
    return {"data": updated}
