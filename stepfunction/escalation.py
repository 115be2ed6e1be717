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


def schedule(request, uri, record, now):
    """Keep, move or drop the escalation of ``record`` (the step ``uri``, as just written)."""
    decision = decision_of(record, request.registry.stepfunction_settings)
    due_at_all = decision.escalate_after and decision.escalate_to
    if not pending(record) or record.get(ESCALATED) or not due_at_all:
        if records.get_escalation(request, uri) is not None:
            records.drop_escalation(request, uri)
        return
    entry = records.get_escalation(request, uri)
    since = entry["since"] if entry else now
    due = since + decision.escalate_after
    if entry is None or entry["due"] != due:
        records.put_escalation(request, uri, since, due)


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
