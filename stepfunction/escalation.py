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


def escalates(record, settings):
    """Whether ``record`` is a pending step that will escalate (not yet escalated)."""
    decision = decision_of(record, settings)
    due_at_all = decision.escalate_after and decision.escalate_to
    return bool(pending(record) and not record.get(ESCALATED) and due_at_all)


def schedule(request, uri, record, now):
    """Keep, move or drop the escalation of ``record`` (the step ``uri``, as just written);
    whether it has one now."""
    settings = request.registry.stepfunction_settings
    if not escalates(record, settings):
        if records.get_escalation(request, uri) is not None:
            records.drop_escalation(request, uri)
        return False
    decision = decision_of(record, settings)
    entry = records.get_escalation(request, uri)
    since = entry["since"] if entry else now
    due = since + decision.escalate_after
    if entry is None or entry["due"] != due:
        records.put_escalation(request, uri, since, due)
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
