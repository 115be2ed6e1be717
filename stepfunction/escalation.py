"""When a pending step escalates: scheduled inside the step's own write (ResourceChanged).

A step whose ``escalateAfter`` and ``escalateTo`` are known (its own, or the settings'
``stepfunction.escalate_after`` / ``escalate_to``) gets, as it becomes pending, a private
object that says when: ``since`` (when it became pending) plus ``escalateAfter``. Changing
those fields moves it; a step that is answered, escalated or deleted loses it. The worker
(``stepfunction.worker.escalation``) escalates what is due.
"""

import time

from stepfunction import records
from stepfunction.decision_fields import decision_of
from stepfunction.notices import pending


ESCALATED = "escalated"


def escalates_after(record, settings):
    """The seconds after which ``record``, a pending step not yet escalated, escalates; None
    when it does not (answered, escalated, or no ``escalateAfter`` and ``escalateTo``)."""
    if not pending(record) or record.get(ESCALATED):
        return None
    decision = decision_of(record, settings)
    return decision.escalate_after if decision.escalate_to else None


def schedule(request, uri, record, now):
    """Keep, move or drop the escalation of ``record`` (the step ``uri``, as just written);
    whether it has one now."""
    after = escalates_after(record, request.registry.stepfunction_settings)
    entry = records.get_escalation(request, uri)
    if not after:
        if entry is not None:
            records.drop_escalation(request, uri)
        return False
    since = entry["since"] if entry else now
    if entry is None or entry["due"] != since + after:
        records.put_escalation(request, uri, since, since + after)
    return True


def on_step_changed(event):
    """ResourceChanged of records: schedule the escalation of the steps it wrote."""
    request = event.request
    settings = request.registry.stepfunction_settings
    payload = event.payload
    bucket_id, collection_id = payload["bucket_id"], payload["collection_id"]
    if not settings.holds_steps(bucket_id, collection_id):
        return
    now = time.time()
    for change in event.impacted_objects:
        old, new = change.get("old"), change.get("new")
        uri = records.record_uri(bucket_id, collection_id, (new or old)["id"])
        if new is None or new.get("deleted"):
            records.drop_escalation(request, uri)
        else:
            schedule(request, uri, new, now)
