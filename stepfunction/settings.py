"""The plugin's ``stepfunction.*`` settings, read and checked once at start-up."""

import dataclasses
import fnmatch
import re
from urllib.parse import urlparse

from pyramid.exceptions import ConfigurationError
from pyramid.settings import asbool, aslist

from stepfunction import link_secret as secret_check
from stepfunction.decision_fields import is_person
from stepfunction.schema import parse_arn


PREFIX = "stepfunction."
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
KINTO_ID = re.compile(r"[a-zA-Z0-9_-]+")


@dataclasses.dataclass(frozen=True)
class Settings:
    aws_access_key: str = ""
    aws_secret_key: str = dataclasses.field(default="", repr=False)
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    activities: tuple[str, ...] = ()
    pollers_per_activity: int = 1
    queues: tuple[str, ...] = ()
    bucket: str = "stepfunction"
    collection: str = "manual_steps"
    # Where steps live: (bucket, collection) pairs; the worker's collection is always one.
    collections: tuple[tuple[str, str], ...] = (("stepfunction", "manual_steps"),)
    # Activity ARN patterns whose tasks the endpoint may fetch when a record has no token.
    fetch_activities: tuple[str, ...] = ()
    heartbeat_seconds: float | None = None
    worker_in_process: bool = False
    sqs_wait_seconds: int = 20
    stop_seconds: float = 20.0
    # Mail to reviewers (on when ``mail.default_sender`` is set; links need ``link_secret``).
    public_url: str | None = None
    link_secret: str = dataclasses.field(default="", repr=False)
    link_ttl: float = 7 * 24 * 3600.0
    remind_every: float | None = None
    remind_max: int = 3
    mail_sender: str | None = None
    # Executions started, followed and stopped as records (issue: executions).
    state_machines: tuple[str, ...] = ()  # ARN patterns that may be started; empty: off.
    executions: tuple[str, str] = ("stepfunction", "executions")
    status_queues: tuple[str, ...] = ()  # SQS queues of EventBridge status-change events.
    reconcile_seconds: float = 300.0  # 0: off.
    mail_ended: bool = False  # mail an execution record's writers when it ends badly.
    # Decisions: a step unanswered this long (seconds) gets these reviewers too, by default.
    escalate_after: float | None = None
    escalate_to: tuple[str, ...] = ()

    @property
    def worker_configured(self):
        return bool(self.activities or self.queues or self.mail_enabled or self.status_queues)

    @property
    def mail_enabled(self):
        """Whether reviewers are mailed (``mail.default_sender`` and ``public_url`` set)."""
        return bool(self.mail_sender)

    @property
    def links_enabled(self):
        """Whether mails carry one-click Approve and Reject links."""
        return self.mail_enabled and bool(self.link_secret)

    def holds_steps(self, bucket_id, collection_id):
        """Whether that collection is one the admin configured for steps."""
        return (bucket_id, collection_id) in self.collections

    def may_start(self, state_machine_arn):
        """Whether a record in the executions collection may start that state machine."""
        return any(fnmatch.fnmatchcase(state_machine_arn, p) for p in self.state_machines)

    def holds_executions(self, bucket_id, collection_id):
        return (bucket_id, collection_id) == self.executions

    def may_fetch(self, activity_arn):
        """Whether an answer may call GetActivityTask on that activity itself."""
        if activity_arn in self.activities:
            return False  # the worker receives its tasks.
        return any(fnmatch.fnmatchcase(activity_arn, p) for p in self.fetch_activities)

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
        if region is not None and not REGION.fullmatch(region):
            fail("aws_region", f"{region!r} is not an AWS region name (e.g. us-west-2)")

        endpoint_url = get("aws_endpoint_url") or None
        if endpoint_url is not None and not _is_http_url(endpoint_url):
            fail("aws_endpoint_url", f"{endpoint_url!r} is not an http(s) URL")

        activities = tuple(aslist(get("activities", "")))
        for arn in activities:
            parsed = parse_arn(arn)
            if parsed is None or parsed.kind != "activity":
                fail("activities", f"{arn!r} is not an activity ARN")

        fetch_activities = tuple(aslist(get("fetch_activities", "")))
        for pattern in fetch_activities:
            if not pattern.startswith("arn:"):
                fail("fetch_activities", f"{pattern!r} is not an activity ARN pattern")

        queues = tuple(aslist(get("queues", "")))
        for url in queues:
            if not _is_http_url(url) or not urlparse(url).path.strip("/"):
                fail("queues", f"{url!r} is not an SQS queue URL")

        def number(name, default, kind, low, high=None):
            raw = get(name)
            if raw in (None, ""):
                return default
            try:
                value = kind(raw)
            except ValueError:
                value = None
            if value is None or value < low or (high is not None and value > high):
                bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
                fail(name, f"{raw!r} is not a number {bounds}")
            return value

        names = {}
        for name, default in (("bucket", cls.bucket), ("collection", cls.collection)):
            names[name] = get(name) or default
            if not KINTO_ID.fullmatch(names[name]):
                fail(name, f"{names[name]!r} is not a valid Kinto id")

        collections = []
        for path in aslist(get("collections", "")):
            bucket_id, _, collection_id = path.partition("/")
            if not (KINTO_ID.fullmatch(bucket_id) and KINTO_ID.fullmatch(collection_id)):
                fail("collections", f"{path!r} is not BUCKET/COLLECTION")
            collections.append((bucket_id, collection_id))
        worker_collection = (names["bucket"], names["collection"])
        if worker_collection not in collections:
            collections.insert(0, worker_collection)

        state_machines = tuple(aslist(get("state_machines", "")))
        for pattern in state_machines:
            if not pattern.startswith("arn:"):
                fail("state_machines", f"{pattern!r} is not a state machine ARN pattern")
        executions = get("executions") or "/".join(cls.executions)
        bucket_id, _, collection_id = executions.partition("/")
        if not (KINTO_ID.fullmatch(bucket_id) and KINTO_ID.fullmatch(collection_id)):
            fail("executions", f"{executions!r} is not BUCKET/COLLECTION")
        if (bucket_id, collection_id) in collections:
            fail("executions", f"{executions!r} already holds steps")
        status_queues = tuple(aslist(get("status_queues", "")))
        for url in status_queues:
            if not _is_http_url(url) or not urlparse(url).path.strip("/"):
                fail("status_queues", f"{url!r} is not an SQS queue URL")

        escalate_to = tuple(aslist(get("escalate_to", "")))
        for person in escalate_to:
            if not is_person(person):
                fail("escalate_to", f"{person!r} is neither an address nor a principal")

        public_url = get("public_url") or None
        if public_url is not None:
            if not _is_http_url(public_url):
                fail("public_url", f"{public_url!r} is not an http(s) URL")
            public_url = public_url.rstrip("/") + "/"
        mail_sender = (settings.get("mail.default_sender") or "").strip() or None
        if mail_sender and public_url is None:
            fail("public_url", "mail.default_sender is set: the mails' links need this URL")
        link_secret = get("link_secret", "")
        problem = secret_check.problem(link_secret, public_url)
        if problem:
            fail("link_secret", problem)

        return cls(
            public_url=public_url,
            link_secret=link_secret,
            link_ttl=number("link_ttl", cls.link_ttl, float, 1),
            remind_every=number("remind_every", None, float, 0.1),
            remind_max=number("remind_max", cls.remind_max, int, 0),
            mail_sender=mail_sender,
            aws_access_key=access_key,
            aws_secret_key=secret_key,
            aws_region=region,
            aws_endpoint_url=endpoint_url,
            activities=activities,
            pollers_per_activity=number("pollers_per_activity", 1, int, 1),
            queues=queues,
            collections=tuple(collections),
            fetch_activities=fetch_activities,
            heartbeat_seconds=number("heartbeat_seconds", None, float, 0.001),
            worker_in_process=asbool(get("worker_in_process", False)),
            sqs_wait_seconds=number("sqs_wait_seconds", 20, int, 0, 20),
            stop_seconds=number("stop_seconds", cls.stop_seconds, float, 0.1, 300),
            state_machines=state_machines,
            executions=(bucket_id, collection_id),
            status_queues=status_queues,
            reconcile_seconds=number("reconcile_seconds", cls.reconcile_seconds, float, 0),
            mail_ended=asbool(get("mail_ended", False)),
            escalate_after=number("escalate_after", None, float, 0.001, 366 * 24 * 3600),
            escalate_to=escalate_to,
            **names,
        )


def _is_http_url(value):
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)
