"""An answer's write that Kinto's timestamp race can't abort, once Step Functions accepted it.

Two writes under one parent that pick the same ``last_modified`` make Kinto raise
IntegrityError ("timestamp race"). ``records.write_record`` tries the record's own write again
from a savepoint, but the request's ResourceChanged listeners run later, once the view has
returned (Kinto's ``notify_resource_events_before`` tween): the history plugin's entry, written
under the bucket that every answer shares, could still lose that race there, and abort the
whole answer with a 409 after Step Functions had resumed the execution.

So, on PostgreSQL, :func:`write` runs the write *and* its ResourceChanged listeners inside one
savepoint, and tries both again from it when the race refuses either. The events it notified
are then no longer pending for the tween (never notified twice); their AfterResourceChanged
still follows the commit, as Kinto would send it. The memory backend has no such race: there
the listeners run as usual.
"""

import collections
import logging
import time

import transaction
from kinto.core.events import EventCollector
from kinto.core.storage.exceptions import IntegrityError

from stepfunction import records


logger = logging.getLogger(__name__)

ATTEMPTS = 8
EVENTS = "resource_events"  # where Kinto collects a request's (or batch's) events


def _copy(collector):
    copy = EventCollector(collector.cascade_level)
    copy.event_dict = collections.OrderedDict(collector.event_dict)
    return copy


def write(request, uri, work):
    """``work()`` (the writes of the record ``uri``) under the record's lock, with its
    ResourceChanged listeners; returns what ``work`` returns."""
    if records.sql_engine(request.registry.storage) is None:
        with records.record_lock(request, uri):
            return work()
    with records.record_lock(request, uri, savepoint=True):
        before = _copy(request.bound_data.get(EVENTS) or EventCollector())
        for attempt in range(ATTEMPTS):
            request.bound_data[EVENTS] = _copy(before)
            try:
                with records.retried_race(attempt):
                    result = work()
                    for event in request.get_resource_events():
                        request.registry.notify(event)
                break
            except IntegrityError:
                if attempt + 1 == ATTEMPTS:
                    logger.error("%s: lost Kinto's timestamp race %d times", uri, ATTEMPTS)
                    raise
                records.rollback_to_savepoint(request)
                time.sleep(0.002 * 2**attempt)
    notified = request.bound_data.pop(EVENTS)
    request.bound_data[EVENTS] = EventCollector()
    transaction.get().addAfterCommitHook(_after_commit, args=(request, notified))
    return result


def _after_commit(success, request, notified):
    """AfterResourceChanged for the events notified early, as Kinto's own hook sends them."""
    if not success:
        return
    pending = request.bound_data.get(EVENTS)
    request.bound_data[EVENTS] = notified
    try:
        events = list(request.get_resource_events(after_commit=True))
    finally:
        request.bound_data[EVENTS] = pending
    for event in events:
        try:
            request.registry.notify(event)
        except Exception:
            logger.exception("a listener of %s failed after commit", type(event).__name__)
