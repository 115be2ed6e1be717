"""stepfunction: answer AWS Step Functions manual steps from Kinto records."""

import logging
import threading
from importlib.metadata import PackageNotFoundError, version

from kinto.core.events import AfterResourceChanged, ResourceChanged
from pyramid.events import ContextFound, NewRequest
from pyramid_mailer.mailer import Mailer

from stepfunction import log_redaction
from stepfunction.client import Client
from stepfunction.ended_mail import on_execution_changed
from stepfunction.escalation import on_step_changed as schedule_escalation
from stepfunction.execution_writes import guard_executions, start_on_create
from stepfunction.guard import check_write, guard_steps
from stepfunction.links import Signer
from stepfunction.notices import on_step_changed, on_step_committed
from stepfunction.records import hide_sql_parameters
from stepfunction.settings import Settings


try:
    __version__ = version("stepfunction")
except PackageNotFoundError:  # pragma: no cover (running from a source tree)
    __version__ = "0.0.0"

logger = logging.getLogger(__name__)


def includeme(config):
    settings = Settings.from_settings(config.get_settings())
    config.registry.stepfunction_settings = settings
    config.registry.stepfunction_client = Client(settings)
    hide_sql_parameters(config.registry)
    log_redaction.install()

    config.add_api_capability(
        "stepfunction",
        description="Answer AWS Step Functions manual steps (SUCCEED or FAIL) from records.",
        url="https://github.com/magopian/kinto-plugin-stepfunction",
        version=__version__,
        collections=[f"/buckets/{b}/collections/{c}" for b, c in settings.collections],
        # Executions: where their records are, and the ARN patterns that may be started.
        executions="/buckets/{}/collections/{}".format(*settings.executions),
        state_machines=list(settings.state_machines),
    )
    config.add_subscriber(check_write, NewRequest)
    config.add_subscriber(guard_steps, ResourceChanged)
    config.add_subscriber(start_on_create, ContextFound)
    config.include("stepfunction.execution_races")  # its write, whatever Kinto's race
    config.add_subscriber(guard_executions, ResourceChanged)
    config.add_subscriber(schedule_escalation, ResourceChanged, for_resources=("record",))
    config.scan("stepfunction.views")
    config.scan("stepfunction.execution_stop")
    config.scan("stepfunction.delegation")
    config.scan("stepfunction.inbox")
    if settings.mail_enabled:
        config.registry.stepfunction_mailer = Mailer.from_settings(config.get_settings())
        config.registry.stepfunction_outbox_wake = threading.Event()
        config.registry.stepfunction_signer = None
        if settings.link_secret:
            config.registry.stepfunction_signer = Signer(settings.link_secret)
            config.include("stepfunction.link_pages")
        config.add_subscriber(on_step_changed, ResourceChanged, for_resources=("record",))
        config.add_subscriber(on_execution_changed, ResourceChanged, for_resources=("record",))
        config.add_subscriber(on_step_committed, AfterResourceChanged, for_resources=("record",))
        warn_if_nothing_sends(config, settings)
    config.include("stepfunction.dashboard")
    config.include("stepfunction.probe")
    config.include("stepfunction.webhook_views")
    if settings.worker_in_process:
        config.include("stepfunction.worker.inprocess")

    logger.info(
        "stepfunction enabled for %s (region=%s, endpoint=%s, credentials=%s)",
        ", ".join(f"{b}/{c}" for b, c in settings.collections),
        settings.aws_region or "from ARN/boto3 default",
        settings.aws_endpoint_url or "AWS",
        "settings" if settings.aws_access_key else "boto3 default chain",
    )


def warn_if_nothing_sends(config, settings):
    """Mail on, the memory backend, no in-process worker: no process can ever send it."""
    backend = config.get_settings().get("storage_backend") or ""
    if "memory" in backend and not settings.worker_in_process:
        logger.warning(
            "stepfunction: mail is on (mail.default_sender) but nothing will send it: the "
            "memory storage backend lives in this process and stepfunction.worker_in_process "
            "is off. Set stepfunction.worker_in_process = true (or use PostgreSQL and run "
            "stepfunction-worker)."
        )
