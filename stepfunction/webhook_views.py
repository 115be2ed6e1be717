"""POST /v1/stepfunction/webhooks/{name}: a signed delivery starts its execution, once.

No Kinto credentials: the signature is the credential. In order, before anything is stored:

    unknown name 404 · Content-Type not JSON 415 · body over max_bytes 413 (Content-Length,
    then at most max_bytes + 1 bytes read) · signature 401 · not a JSON object 400 ·
    no delivery id 400

then the delivery's execution record is created (``executions.start_record``), named from the
webhook and the delivery id: 202 ``{"data": record}``; the same delivery again: 200 with the
same record, never a second execution. Where the delivery id is not signed (GitHub, WebSub
with a delivery header), the same signed body under another id is the same delivery.
A refusal is one log line, without the secret or the signature; Kinto's request log never
shows a signature header either (``RedactSignatures``).
"""

import hashlib
import json
import logging

import colander
from kinto.core import Service
from kinto.core.errors import ERRORS, http_error
from kinto.core.resource.schema import ErrorResponseSchema
from pyramid import httpexceptions
from pyramid.security import NO_PERMISSION_REQUIRED

from stepfunction import executions, records, webhooks
from stepfunction import webhook_signatures as signatures


logger = logging.getLogger(__name__)

PATH = "/stepfunction/webhooks/{name}"
MAX_INPUT_BYTES = 256 * 1024  # Step Functions' largest execution input
SIGNATURE_HEADERS = frozenset(
    h.lower() for h in (signatures.WEBSUB_HEADER, signatures.GITHUB_HEADER, "webhook-signature")
)
REDACTED = "(signature)"
GITHUB_EVENT = "X-GitHub-Event"
BODY = "stepfunction.webhook_body"  # request.bound_data key: the body as read


def _error(status, errno, message, **headers):
    response = http_error(status(), errno=errno, message=message)
    response.headers.update(headers)
    return response


class WebhookContext:
    """The webhook the path names; any other name has none (404)."""

    def __init__(self, request):
        configured = request.registry.stepfunction_webhooks
        self.webhook = configured.get(request.matchdict["name"])
        if self.webhook is None:
            raise _error(
                httpexceptions.HTTPNotFound,
                ERRORS.MISSING_RESOURCE,
                "No webhook of this name (see stepfunction.webhook.{name}.*).",
            )


class _Headers(colander.MappingSchema):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        names = (
            (signatures.WEBSUB_HEADER, "websub: sha256=<hex> (or sha1=<hex>)"),
            (signatures.GITHUB_HEADER, "github: sha256=<hex>"),
            (signatures.DELIVERY_HEADERS["github"], "github: the delivery id"),
            (GITHUB_EVENT, "github: the event (a ping starts nothing)"),
            *((h, "standard (Standard Webhooks)") for h in signatures.STANDARD_HEADERS),
        )
        for name, description in names:
            node = colander.SchemaNode(
                colander.String(), name=name, missing=colander.drop, description=description
            )
            self.add(node)


class WebhookRequest(colander.MappingSchema):
    header = _Headers()
    body = colander.SchemaNode(
        colander.Mapping(unknown="preserve"), description="The payload: the execution's input"
    )


class _Record(colander.MappingSchema):
    data = colander.SchemaNode(
        colander.Mapping(unknown="preserve"), description="The delivery's execution record"
    )


RESPONSES = {
    "200": _Record(
        description="This delivery was received before: its record (GitHub's ping: null)"
    ),
    "202": _Record(description="Accepted: the execution is started"),
    "400": ErrorResponseSchema(description="Not a JSON object, or no delivery id"),
    "401": ErrorResponseSchema(description="Missing or wrong signature, or a stale timestamp"),
    "404": ErrorResponseSchema(description="No webhook of this name"),
    "409": ErrorResponseSchema(description="The delivery's record was not made by the webhook"),
    "413": ErrorResponseSchema(description="The body is larger than max_bytes"),
    "415": ErrorResponseSchema(description="Content-Type is not application/json"),
    "503": ErrorResponseSchema(description="Step Functions is unavailable: send it again"),
}

webhook_service = Service(
    name="stepfunction_webhook",
    description="A signed webhook delivery starts its state machine's execution, once",
    path=PATH,
    factory=WebhookContext,
)


def read_body(request, limit):
    """The raw body, or 413 without reading more than ``limit + 1`` bytes. Read once: the
    request run again after Kinto's race (``execution_races``) gets the same bytes."""
    if BODY in request.bound_data:
        return request.bound_data[BODY]
    length = request.content_length
    if length is None or length <= limit:
        body = request.body_file.read(limit + 1)
        if len(body) <= limit:
            request.bound_data[BODY] = body
            return body
    raise _error(
        httpexceptions.HTTPRequestEntityTooLarge,
        ERRORS.INVALID_PARAMETERS,
        f"The body is larger than this webhook's {limit} bytes (max_bytes).",
    )


def parse_payload(body):
    """The body as a JSON object (UTF-8, no NaN or Infinity), or 400."""

    def refuse_constant(name):
        raise ValueError(f"{name} is not JSON")

    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=refuse_constant)
    except (ValueError, RecursionError) as e:
        message = "The body is not JSON" + (f": {e}" if isinstance(e, ValueError) else ".")
        raise _error(httpexceptions.HTTPBadRequest, ERRORS.INVALID_PARAMETERS, message) from None
    if not isinstance(payload, dict):
        raise _error(
            httpexceptions.HTTPBadRequest,
            ERRORS.INVALID_PARAMETERS,
            "The body must be a JSON object: it is the execution's input.",
        )
    if len(json.dumps(payload).encode("utf-8")) > MAX_INPUT_BYTES:
        raise _error(
            httpexceptions.HTTPRequestEntityTooLarge,
            ERRORS.INVALID_PARAMETERS,
            f"Step Functions takes inputs of at most {MAX_INPUT_BYTES} bytes.",
        )
    return payload


def act_as(request, webhook):
    """From now on the request is the webhook's: Kinto's history names it ``webhook:{name}``.

    Whatever credentials came with the delivery are resolved first (and cached by the
    security policy), so that nothing switches the request back to them.
    """
    request.authenticated_userid  # noqa: B018 (resolves and caches the identity)
    request.authn_type = "webhook"
    request.selected_userid = webhook.name


@webhook_service.post(
    permission=NO_PERMISSION_REQUIRED,
    content_type="application/json",
    schema=WebhookRequest(),
    response_schemas=RESPONSES,
)
def receive(request):
    webhook = request.context.webhook
    body = read_body(request, webhook.max_bytes)
    try:
        signatures.verify(webhook.scheme, webhook.secrets, request.headers, body)
    except signatures.Unverified as e:
        logger.warning(
            "webhook %s: delivery of %d bytes from %s refused (401): %s",
            webhook.name,
            len(body),
            request.client_addr,
            e.reason,
        )
        raise _error(
            httpexceptions.HTTPUnauthorized,
            ERRORS.INVALID_AUTH_TOKEN,
            f"The delivery's signature does not verify ({webhook.scheme}).",
        ) from None
    payload = parse_payload(body)
    if webhook.scheme == signatures.GITHUB and request.headers.get(GITHUB_EVENT) == "ping":
        logger.info("webhook %s: GitHub's ping, nothing started", webhook.name)
        return {"data": None}  # sent when the webhook is added in GitHub: not an event
    delivery = webhook.delivery_id(request.headers, body)
    if delivery is None:
        raise _error(
            httpexceptions.HTTPBadRequest,
            ERRORS.INVALID_PARAMETERS,
            f"No {webhook.delivery_header} header: it identifies the delivery.",
        )
    record_id = webhook.record_id(delivery)
    act_as(request, webhook)
    record, created = start_once(request, webhook, record_id, payload, body)
    request.response.status_code = 202 if created else 200
    return {"data": record}


def start_once(request, webhook, record_id, payload, body):
    """``start``, once per signed body where the delivery id is not signed (GitHub, WebSub):
    the body sent again under another id (a replay, a redelivery) gets its first record."""
    if webhook.signs_delivery_id:
        return start(request, webhook, record_id, payload)
    digest = hashlib.sha256(body).hexdigest()
    bucket_id, collection_id = request.registry.stepfunction_settings.executions
    with records.delivery_lock(request, f"{webhook.name}:{digest}"):
        first = records.first_delivery(request, webhook.name, digest)
        if first not in (None, record_id):
            record = records.read_record(request, bucket_id, collection_id, first)
            if record is not None:
                logger.warning(
                    "webhook %s: delivery %s repeats the signed body of %s: nothing started",
                    webhook.name,
                    record_id,
                    first,
                )
                return record, False
        record, created = start(request, webhook, record_id, payload)
        if first != record_id:
            records.put_delivery(request, webhook.name, digest, record_id)
        return record, created


def start(request, webhook, record_id, payload):
    """``(record, created)`` of the delivery's execution record: created and started once,
    whatever the retries and races (``executions.start_record``)."""
    record, created = executions.start_record(
        request, record_id, webhook.state_machine, payload, webhook.started_by, allow_listed=False
    )
    if not created and record.get("startedBy") != webhook.started_by:
        # Someone allowed to create records there took the delivery's id first.
        logger.warning("webhook %s: record %s was not started by it", webhook.name, record_id)
        raise _error(
            httpexceptions.HTTPConflict,
            ERRORS.CONSTRAINT_VIOLATED,
            f"A record {record_id} exists that this webhook did not start.",
        )
    return record, created


class RedactSignatures(logging.Filter):
    """Kinto's request log at DEBUG holds the request's headers: never a signature's value."""

    def filter(self, record):
        headers = getattr(record, "headers", None)
        if isinstance(headers, dict) and any(k.lower() in SIGNATURE_HEADERS for k in headers):
            record.headers = {
                k: REDACTED if k.lower() in SIGNATURE_HEADERS else v for k, v in headers.items()
            }
        return True


def includeme(config):
    config.registry.stepfunction_webhooks = webhooks.from_settings(config.get_settings())
    summary = logging.getLogger("request.summary")
    if not any(isinstance(f, RedactSignatures) for f in summary.filters):
        summary.addFilter(RedactSignatures())
    config.scan("stepfunction.webhook_views")
    if config.registry.stepfunction_webhooks:
        logger.info(
            "stepfunction webhooks: %s",
            ", ".join(
                f"{w.name} ({w.scheme}, {w.state_machine})"
                for w in config.registry.stepfunction_webhooks.values()
            ),
        )
