"""Writes outside an HTTP request, each in a transaction of its own, as Kinto would do them.

Two callers need a commit of their own: the worker (it has no request), and an answer that
fetched a task with GetActivityTask (Step Functions never hands that task out again, so its
token must be stored before anything else can fail). Both run ``work(request)`` on a request
of their own with Kinto's event contract: ResourceChanged inside the transaction, before its
commit, so that listeners can refuse the write; AfterResourceChanged once it is committed.
"""

import contextlib
import logging
import threading
import time

import transaction
from kinto.core.cornice.errors import Errors
from kinto.core.storage.exceptions import IntegrityError
from pyramid.request import Request, apply_request_extensions
from pyramid.threadlocal import manager as threadlocal_manager

from stepfunction.records import TRUSTED, retried_race


logger = logging.getLogger(__name__)

# Kinto asks to retry when two writes under one parent pick the same ``last_modified``.
ATTEMPTS = 5


def _request(registry):
    """A request with no user: the worker's, trusted to designate steps."""
    request = Request.blank(f"/{registry.route_prefix}/")
    request.registry = registry
    apply_request_extensions(request)
    request.errors = Errors()  # where Kinto's resources report a refused write from
    request.bound_data[TRUSTED] = True
    return request


def commit(registry, work):
    """``work(request)`` committed in a transaction of its own; returns what it returns.

    Runs on the calling thread: pyramid_tm and zope.sqlalchemy transactions are per thread,
    so the caller must not be inside another transaction on this thread (see
    ``commit_aside`` for a request thread).
    """
    for attempt in range(ATTEMPTS):
        request = _request(registry)
        threadlocal_manager.push({"request": request, "registry": registry})
        # Kinto logs the race at ERROR: at DEBUG while another attempt follows.
        race = retried_race(attempt) if attempt + 1 < ATTEMPTS else contextlib.nullcontext()
        try:
            with race, transaction.manager:
                result = work(request)
                for event in request.get_resource_events():
                    registry.notify(event)
            break
        except IntegrityError:
            if attempt + 1 == ATTEMPTS:
                raise
            time.sleep(0.01 * 2**attempt)
        finally:
            threadlocal_manager.pop()
    for event in request.get_resource_events(after_commit=True):
        try:
            registry.notify(event)
        except Exception:
            logger.exception("a listener of %s failed after commit", type(event).__name__)
    return result


def commit_aside(registry, work):
    """``commit`` from a request thread, whose own transaction stays open meanwhile."""
    outcome = {}

    def run():
        try:
            outcome["result"] = commit(registry, work)
        except BaseException as e:  # handed back to the calling thread below
            outcome["error"] = e

    thread = threading.Thread(target=run, name="stepfunction-commit")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
