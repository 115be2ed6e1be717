"""Apps built for tests are released: nothing keeps them alive after their test."""

import gc
import weakref

import pytest
from kinto.core.cornice.service import SERVICES
from kinto.core.views.hello import hello
from pyramid.events import ApplicationCreated
from pyramid.exceptions import ConfigurationError

from stepfunction.testing import apps
from tests.conftest import app_settings


def build(emulator, **settings):
    return apps.build(app_settings("memory", emulator, **settings))


def collected(ref):
    gc.collect()
    return ref() is None


def test_a_released_app_is_freed(emulator):
    wsgi = build(emulator)
    registry = weakref.ref(wsgi.registry)
    assert apps.release(wsgi.registry)
    del wsgi
    assert collected(registry)


def test_release_keeps_the_services_of_modules(emulator):
    """``/``, ``/__api__``... are served by every app: their services stay."""
    for _ in range(2):
        wsgi = build(emulator)
        assert apps.release(wsgi.registry)
    assert hello in SERVICES
    assert not any(hasattr(service, "resource") for service in SERVICES)


def test_release_stops_the_in_process_worker(emulator, workflows):
    activity = workflows.activity()
    wsgi = build(
        emulator,
        **{"stepfunction.activities": activity, "stepfunction.worker_in_process": "true"},
    )
    worker = wsgi.registry.stepfunction_worker
    assert all(thread.is_alive() for thread in worker.threads)
    registry = weakref.ref(wsgi.registry)
    assert apps.release(wsgi.registry)
    assert not any(thread.is_alive() for thread in worker.threads)
    del wsgi, worker
    assert collected(registry)  # its stop at exit no longer holds it


def includeme(config):
    """A plugin whose app fails once built, after Kinto's resources made their services."""
    config.add_subscriber(refuse, ApplicationCreated)


def refuse(event):
    raise ConfigurationError("refused")


def test_a_build_that_fails_leaves_no_service(emulator):
    before = list(SERVICES)
    includes = app_settings("memory", emulator)["includes"]
    with pytest.raises(ConfigurationError, match="refused"):
        build(emulator, includes=f"{includes} {__name__}")
    assert [id(s) for s in SERVICES] == [id(s) for s in before]
