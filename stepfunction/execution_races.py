"""A started execution's record is written by the request that started it, even when Kinto's
timestamp race aborts that write.

A request starts an execution (``executions.start``: a record created in the executions
collection, at ContextFound, before Kinto's view writes it; a webhook's delivery) and then
writes its record. On PostgreSQL, two writes under one parent that pick the same
``last_modified`` make Kinto raise IntegrityError, in its view or in a ResourceChanged listener
(the history plugin's entry, under the bucket every write shares), and answer 409 "please
retry": the execution would run without a record, and a POST without an id, posted again,
would start a second one (GitHub does not send a failed delivery again).

So, on PostgreSQL, this tween (under Kinto's EXCVIEW, over its ResourceChanged tween) runs a
request that started an execution again from the savepoint taken just before the start, when
the race aborts it. Nothing starts twice: a created record's body already names its execution
(``execution_writes.STARTED``), and StartExecution of the same name and input is the same
execution. Other requests' races are Kinto's 409, as before.
"""

import contextlib
import logging
import time

from kinto.core.events import EventCollector
from kinto.core.storage.exceptions import IntegrityError
from pyramid.tweens import EXCVIEW

from stepfunction import records
from stepfunction.durable import EVENTS
from stepfunction.executions import START_SAVEPOINT, STARTING


logger = logging.getLogger(__name__)

ATTEMPTS = 8


def tween_factory(handler, registry):
    if records.sql_engine(registry.storage) is None:
        return handler  # the memory backend has no such race

    def tween(request):
        attempt = 0
        while True:
            try:
                with records.retried_race(attempt) if attempt else contextlib.nullcontext():
                    return handler(request)
            except IntegrityError:
                if not request.bound_data.get(STARTING):
                    raise
                attempt += 1
                if attempt == ATTEMPTS:
                    logger.error(
                        "%s: lost Kinto's timestamp race %d times", request.path, ATTEMPTS
                    )
                    raise
                records.rollback_to_savepoint(request, START_SAVEPOINT)
                request.bound_data[EVENTS] = EventCollector()  # the lost attempt's
                time.sleep(0.002 * 2**attempt)

    return tween


def includeme(config):
    config.add_tween(
        "stepfunction.execution_races.tween_factory",
        under=EXCVIEW,
        over="kinto.core.events.notify_resource_events_before",
    )
