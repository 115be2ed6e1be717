"""stepfunction: answer AWS Step Functions manual steps from Kinto records."""

import dataclasses
import logging
import re
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlparse

from pyramid.exceptions import ConfigurationError
from pyramid.settings import asbool, aslist

from stepfunction.client import StepFunctions, parse_arn
from stepfunction.records import hide_sql_parameters


try:
    __version__ = version("stepfunction")
except PackageNotFoundError:  # pragma: no cover (running from a source tree)
    __version__ = "0.0.0"

logger = logging.getLogger(__name__)

PREFIX = "stepfunction."
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
KINTO_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The plugin's settings, checked once at start-up."""

    aws_access_key: str = ""
    aws_secret_key: str = dataclasses.field(default="", repr=False)
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    activities: tuple[str, ...] = ()
    pollers_per_activity: int = 1
    queues: tuple[str, ...] = ()
    bucket: str = "stepfunction"
    collection: str = "manual_steps"
    heartbeat_seconds: float | None = None
    worker_in_process: bool = False
    sqs_wait_seconds: int = 20

    @property
    def worker_configured(self):
        return bool(self.activities or self.queues)

    @classmethod
    def from_settings(cls, settings):
        """Read ``stepfunction.*`` settings; a malformed one stops start-up."""

        def get(name, default=None):
            value = settings.get(PREFIX + name, default)
            return value.strip() if isinstance(value, str) else value

        def fail(name, message):
            raise ConfigurationError(f"{PREFIX}{name}: {message}")

        access_key, secret_key = get("aws_access_key", ""), get("aws_secret_key", "")
        if bool(access_key) != bool(secret_key):
            fail(
                "aws_access_key" if secret_key else "aws_secret_key",
                "set both aws_access_key and aws_secret_key, or neither "
                "(boto3's default credential chain then applies)",
            )

        region = get("aws_region") or None
        if region is not None and not REGION.match(region):
            fail("aws_region", f"{region!r} is not an AWS region name (e.g. us-west-2)")

        endpoint_url = get("aws_endpoint_url") or None
        if endpoint_url is not None:
            parsed = urlparse(endpoint_url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                fail("aws_endpoint_url", f"{endpoint_url!r} is not an http(s) URL")

        activities = tuple(aslist(get("activities", "")))
        for arn in activities:
            parsed = parse_arn(arn)
            if parsed is None or parsed.kind != "activity":
                fail("activities", f"{arn!r} is not an activity ARN")

        queues = tuple(aslist(get("queues", "")))
        for url in queues:
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.path.strip("/"):
                fail("queues", f"{url!r} is not an SQS queue URL")

        def positive(name, default, kind):
            raw = get(name)
            if raw in (None, ""):
                return default
            try:
                value = kind(raw)
            except ValueError:
                value = 0
            if value <= 0:
                fail(name, f"{raw!r} is not a positive number")
            return value

        raw_wait = get("sqs_wait_seconds")
        try:
            sqs_wait = 20 if raw_wait in (None, "") else int(raw_wait)
        except ValueError:
            sqs_wait = -1
        if not 0 <= sqs_wait <= 20:
            fail("sqs_wait_seconds", f"{raw_wait!r} is not a number of seconds from 0 to 20")

        names = {}
        for name, default in (("bucket", cls.bucket), ("collection", cls.collection)):
            names[name] = get(name) or default
            if not KINTO_ID.match(names[name]):
                fail(name, f"{names[name]!r} is not a valid Kinto id")

        return cls(
            aws_access_key=access_key,
            aws_secret_key=secret_key,
            aws_region=region,
            aws_endpoint_url=endpoint_url,
            activities=activities,
            pollers_per_activity=positive("pollers_per_activity", 1, int),
            queues=queues,
            heartbeat_seconds=positive("heartbeat_seconds", None, float),
            worker_in_process=asbool(get("worker_in_process", False)),
            sqs_wait_seconds=sqs_wait,
            **names,
        )


def includeme(config):
    settings = Settings.from_settings(config.get_settings())
    config.registry.stepfunction = settings
    config.registry.stepfunctions = StepFunctions(settings)
    hide_sql_parameters(config.registry)

    config.add_api_capability(
        "stepfunction",
        description="Answer AWS Step Functions manual steps (SUCCEED or FAIL) from records.",
        url="https://github.com/magopian/kinto-plugin-stepfunction",
        version=__version__,
    )
    config.scan("stepfunction.views")
    config.include("stepfunction.dashboard")

    if settings.worker_in_process:
        from stepfunction.worker import start_in_process

        start_in_process(config)

    logger.info(
        "stepfunction enabled (region=%s, endpoint=%s, credentials=%s)",
        settings.aws_region or "from ARN/boto3 default",
        settings.aws_endpoint_url or "AWS",
        "settings" if settings.aws_access_key else "boto3 default chain",
    )
