"""Kinto apps built and released again, many in one process (a test run builds over a thousand).

A real Kinto builds one app per process, and two things of Kinto's and ours assume it:

- Kinto's cornice keeps every service it ever created in a process-wide list
  (``kinto.core.cornice.service.SERVICES``). Each app's resources (buckets, collections,
  records, groups, history...) create theirs on every build, and each of them holds, through
  venusian's scan (its frame's locals), the configurator that built the app: so every app
  stayed alive to the end of the run, about 14 MB each, 13 GB for the whole suite.
- An in-process worker (``stepfunction.worker_in_process``) polls until its ``atexit`` handler
  stops it, when the process exits: its threads went on polling after their test, and held
  their app too.

:func:`build` notes the services an app adds; :func:`release` stops its in-process worker and
forgets those services, after which nothing but the caller holds the app.
"""

import atexit

import kinto
from kinto.core.cornice import service as cornice


NOTED = "stepfunction_testing_services"  # the registry's attribute: the services it added
STOP_SECONDS = 30  # an in-process worker's polls end within seconds


def build(settings):
    """``kinto.main`` on ``settings``: its WSGI app. A build that fails leaves nothing behind."""
    known = {id(service) for service in cornice.SERVICES}
    try:
        wsgi = kinto.main({}, **settings)
    except BaseException:
        _forget(_made_since(known))
        raise
    setattr(wsgi.registry, NOTED, _made_since(known))
    return wsgi


def _made_since(known):
    """The services of Kinto's resources made since ``known``: ``register_resource`` makes
    them anew on each build (and marks them with their ``resource``). The services of modules
    (``hello = Service(...)``) are made once, on import, and serve every app: they stay."""
    return [s for s in cornice.SERVICES if id(s) not in known and hasattr(s, "resource")]


def release(registry):
    """Stop the app's in-process worker (if any) and forget its services. Whether its worker
    stopped within ``STOP_SECONDS``; the app must not serve a request afterwards."""
    stopped = True
    worker = getattr(registry, "stepfunction_worker", None)
    if worker is not None:
        atexit.unregister(worker.stop)
        stopped = worker.stop(STOP_SECONDS)
    _forget(registry.__dict__.pop(NOTED, []))
    return stopped


def _forget(services):
    gone = {id(service) for service in services}
    cornice.SERVICES[:] = [s for s in cornice.SERVICES if id(s) not in gone]
