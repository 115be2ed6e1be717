"""Refuse, with a 400 naming the field, a step whose ``reviewer`` or ``deadline`` can't be used.

The guard asks it on every write path, before Kinto stores the write (``check_write``, on the
record the write would store) and inside the write's transaction (``guard_steps``, on what
was really written). Only a changed field is checked: a record stored by an
earlier version can still be answered. ``reviewer`` is checked with mail on only: without it,
it is free text that nothing mails (the original plugin's seed holds a placeholder). The
worker drops what it can't use from a task's input (``stepfunction.worker.tasks``) rather
than refusing the task.
"""

from kinto.core.errors import ERRORS, http_error
from pyramid import httpexceptions

from stepfunction.addresses import asking_problem
from stepfunction.decision_fields import decision_problem
from stepfunction.schema import DECISION_FIELDS


def _changed(new, old):
    fields = ("reviewer", "deadline", *DECISION_FIELDS)
    return {f: new.get(f) for f in fields if new.get(f) != old.get(f)}


def refusal(new, old, mail):
    changed = _changed(new or {}, old or {})
    if not mail:  # ``reviewer`` is free text when nothing is mailed (the original seed's)
        changed.pop("reviewer", None)
    problem = asking_problem(changed) or decision_problem(changed)
    if problem is None:
        return None
    field, message = problem
    details = {"name": field, "location": "body", "description": message}
    return http_error(
        httpexceptions.HTTPBadRequest(),
        errno=ERRORS.INVALID_PARAMETERS,
        message=f"data.{field} in body: {message}",
        details=[details],
    )
