"""The worker as daemon threads of the Kinto server (``stepfunction.worker_in_process``)."""

import atexit
import logging

from pyramid.events import ApplicationCreated

from stepfunction.worker.supervisor import Worker


logger = logging.getLogger(__name__)


def on_created(event):
    registry = event.app.registry
    settings = registry.stepfunction_settings
    if not settings.worker_configured:
        logger.warning(
            "stepfunction.worker_in_process is set but neither stepfunction.activities, "
            "stepfunction.queues nor mail.default_sender is: no worker started"
        )
        return
    worker = Worker(registry)
    registry.stepfunction_worker = worker
    worker.start(daemon=True)
    atexit.register(worker.stop, settings.stop_seconds)


def includeme(config):
    config.add_subscriber(on_created, ApplicationCreated)
