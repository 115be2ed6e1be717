"""Webhooks' settings, read and checked once at start-up, and the names of their deliveries.

    stepfunction.webhook.{name}.state_machine    the state machine ARN a delivery starts
    stepfunction.webhook.{name}.secret           one or more secrets, space-separated
    stepfunction.webhook.{name}.scheme           websub | github | standard
    stepfunction.webhook.{name}.delivery_header  the header that identifies a delivery
    stepfunction.webhook.{name}.max_bytes        the largest body accepted (default 1 MiB)

A delivery's record id, which is also its execution's name, is ``{name}_{delivery id}`` when
that fits (at most 80 characters of ``[0-9A-Za-z_-]``, the delivery id starting with a letter
or digit), else ``{name}__{digest of the delivery id}``. Names hold no ``_``: the first ``_``
ends the name, and what follows it tells the two forms apart, so no two webhooks, and no two
deliveries, share an id.
"""

import dataclasses
import hashlib
import re

from pyramid.exceptions import ConfigurationError
from pyramid.settings import aslist

from stepfunction import webhook_signatures as signatures
from stepfunction.schema import parse_arn


PREFIX = "stepfunction.webhook."
FIELDS = ("state_machine", "secret", "scheme", "delivery_header", "max_bytes")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
HEADER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
DELIVERY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
MAX_NAME_CHARS = 80  # Step Functions' execution names (and so the records' ids)
DIGEST_CHARS = 40
DEFAULT_MAX_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Webhook:
    name: str
    state_machine: str
    scheme: str
    secrets: tuple[str, ...] = dataclasses.field(repr=False)
    delivery_header: str | None = None  # None: the body's digest identifies a delivery
    max_bytes: int = DEFAULT_MAX_BYTES

    @property
    def started_by(self):
        """Who the records and their history say started the execution."""
        return f"webhook:{self.name}"

    @property
    def signs_delivery_id(self):
        """Whether a delivery's id is signed (Standard Webhooks') or is its body's digest:
        otherwise a signed body sent again under another id must find its first record."""
        if self.delivery_header is None:
            return True
        signed = signatures.DELIVERY_HEADERS[signatures.STANDARD]
        return self.scheme == signatures.STANDARD and self.delivery_header.lower() == signed

    def delivery_id(self, headers, body):
        """The delivery's id (a string), or None when its header is missing."""
        if self.delivery_header is None:
            return "body-" + hashlib.sha256(body).hexdigest()
        return (headers.get(self.delivery_header) or "").strip() or None

    def record_id(self, delivery_id):
        """The id of the delivery's record, and the name of its execution."""
        literal = f"{self.name}_{delivery_id}"
        if DELIVERY.fullmatch(delivery_id) and len(literal) <= MAX_NAME_CHARS:
            return literal
        digest = hashlib.sha256(delivery_id.encode("utf-8", "surrogateescape")).hexdigest()
        return f"{self.name}__{digest[:DIGEST_CHARS]}"


def from_settings(settings):
    """``{name: Webhook}`` from ``stepfunction.webhook.*``; a bad setting stops start-up."""
    found = {}
    for key, value in settings.items():
        if not key.startswith(PREFIX):
            continue
        name, _, field = key[len(PREFIX) :].rpartition(".")
        if field not in FIELDS:
            known = ", ".join(FIELDS)
            raise ConfigurationError(f"{key}: unknown webhook setting (one of {known})")
        if not NAME.fullmatch(name):
            raise ConfigurationError(
                f"{key}: the webhook's name must be 1 to 32 letters, digits or '-', "
                "starting with a letter or digit"
            )
        found.setdefault(name, {})[field] = value.strip() if isinstance(value, str) else value
    return {name: _webhook(name, fields) for name, fields in sorted(found.items())}


def _webhook(name, fields):
    def fail(field, message):
        raise ConfigurationError(f"{PREFIX}{name}.{field}: {message}")

    for field in ("state_machine", "secret", "scheme"):
        if not fields.get(field):
            fail(field, "missing: every webhook needs state_machine, secret and scheme")
    arn = parse_arn(fields["state_machine"])
    if arn is None or arn.kind != "stateMachine":
        fail("state_machine", f"{fields['state_machine']!r} is not a state machine ARN")
    scheme = fields["scheme"]
    if scheme not in signatures.SCHEMES:
        fail("scheme", f"{scheme!r} is not one of {', '.join(signatures.SCHEMES)}")
    secrets = tuple(aslist(fields["secret"]))
    for position, secret in enumerate(secrets, 1):
        problem = signatures.secret_problem(scheme, secret)
        if problem:
            fail("secret", f"secret number {position} {problem}")
    header = fields.get("delivery_header") or signatures.DELIVERY_HEADERS[scheme]
    if header is not None and not HEADER.fullmatch(header):
        fail("delivery_header", f"{header!r} is not a header name")
    max_bytes = fields.get("max_bytes") or DEFAULT_MAX_BYTES
    try:
        max_bytes = int(max_bytes)
    except ValueError:
        max_bytes = 0
    if max_bytes < 1:
        fail("max_bytes", f"{fields['max_bytes']!r} is not a number of bytes (at least 1)")
    return Webhook(
        name=name,
        state_machine=fields["state_machine"],
        scheme=scheme,
        secrets=secrets,
        delivery_header=header,
        max_bytes=max_bytes,
    )
