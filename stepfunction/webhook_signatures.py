"""Webhook signatures: whether a delivery's raw body was signed with one of a webhook's secrets.

Pure functions over the headers and the raw body, one per scheme:

``websub``   ``X-Hub-Signature: sha256=<hex>`` (``sha1=``, ``sha384=``, ``sha512=`` too), the
             HMAC of the body, as WebSub hubs and Jira send it.
``github``   ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the body.
``standard`` Standard Webhooks (the ``standardwebhooks`` package): ``webhook-id``,
             ``webhook-timestamp`` and ``webhook-signature: v1,<base64>`` signed with a
             ``whsec_…`` secret; a timestamp more than 5 minutes off is refused.

Any one of the secrets verifies (rotation). Digests are compared with
``hmac.compare_digest``. A refusal says why in words that never hold a secret or a signature.
"""

import base64
import binascii
import hmac
import re

import standardwebhooks


WEBSUB, GITHUB, STANDARD = "websub", "github", "standard"
SCHEMES = (WEBSUB, GITHUB, STANDARD)

WEBSUB_HEADER = "X-Hub-Signature"
GITHUB_HEADER = "X-Hub-Signature-256"
STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# The header a delivery is identified by, when the webhook names none (None: WebSub has no
# delivery id; the body's digest stands for it).
DELIVERY_HEADERS = {WEBSUB: None, GITHUB: "X-GitHub-Delivery", STANDARD: "webhook-id"}
WEBSUB_METHODS = ("sha1", "sha256", "sha384", "sha512")
HEX = re.compile(r"[0-9a-fA-F]+")
MIN_SECRET_CHARS = 16  # HMAC secrets (websub, github)
STANDARD_SECRET_BYTES = (24, 64)  # Standard Webhooks' secrets, once base64-decoded


class Unverified(Exception):
    """The delivery's signature does not verify; ``reason`` is safe to log."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def secret_problem(scheme, secret):
    """Why ``secret`` can't be one of a ``scheme`` webhook's secrets, or None (never quotes it)."""
    if scheme != STANDARD:
        if len(secret) < MIN_SECRET_CHARS:
            return f"is shorter than {MIN_SECRET_CHARS} characters"
        return None
    if not secret.startswith("whsec_"):
        return "does not start with whsec_ (Standard Webhooks' secrets do)"
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        return "is not whsec_ followed by base64"
    low, high = STANDARD_SECRET_BYTES
    if not low <= len(key) <= high:
        return f"is {len(key)} bytes once decoded, not from {low} to {high}"
    return None


def verify(scheme, secrets, headers, body):
    """Return if ``body`` (bytes) was signed with one of ``secrets``; raise ``Unverified``.

    ``headers``: the request's headers (a case-insensitive mapping, as WebOb's).
    """
    if scheme == WEBSUB:
        return _verify_hmac(secrets, headers, body, WEBSUB_HEADER, WEBSUB_METHODS)
    if scheme == GITHUB:
        return _verify_hmac(secrets, headers, body, GITHUB_HEADER, ("sha256",))
    if scheme == STANDARD:
        return _verify_standard(secrets, headers, body)
    raise ValueError(f"unknown scheme {scheme!r}")


def hmac_hex(secret, body, method="sha256"):
    """``<hex>`` of ``method=<hex>``: the HMAC of ``body`` with ``secret``."""
    return hmac.new(secret.encode("utf-8"), body, method).hexdigest()


def _verify_hmac(secrets, headers, body, header, methods):
    value = (headers.get(header) or "").strip()
    if not value:
        raise Unverified(f"no {header} header")
    method, _, given = value.partition("=")
    method = method.strip().lower()
    if method not in methods:
        raise Unverified(f"{header} is not {' or '.join(m + '=<hex>' for m in methods)}")
    given = given.strip().lower()
    if not HEX.fullmatch(given):
        raise Unverified(f"{header} is not {method}=<hex>")
    matched = False
    for secret in secrets:  # every secret, whichever matches: no timing tells which one
        matched |= hmac.compare_digest(hmac_hex(secret, body, method).encode(), given.encode())
    if not matched:
        raise Unverified(f"{header} matches none of the webhook's secrets")


def _verify_standard(secrets, headers, body):
    present = {name: headers.get(name) for name in STANDARD_HEADERS}
    missing = [name for name, value in present.items() if not value]
    if missing:
        raise Unverified(f"no {', '.join(missing)} header")
    # Checked here, not left to the package: its releases disagree on what they raise for
    # these (1.3 says only that no signature matches).
    if not any(_is_v1_signature(part) for part in present["webhook-signature"].split(" ")):
        raise Unverified("webhook-signature is not v1,<base64>")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unverified("the body is not UTF-8") from None
    reason = None
    for secret in secrets:
        try:
            standardwebhooks.Webhook(secret).verify(body, present, json_parse=False)
            return
        except standardwebhooks.WebhookVerificationError as e:
            reason = _standard_reason(str(e))
        except ValueError:
            reason = "webhook-signature matches none of the webhook's secrets"
    raise Unverified(reason)


def _is_v1_signature(part):
    version, _, signature = part.partition(",")
    try:
        return version == "v1" and bool(base64.b64decode(signature, validate=True))
    except binascii.Error:
        return False


def _standard_reason(message):
    """The package's message, in this module's words (it never quotes a signature)."""
    if "too old" in message or "too new" in message:
        return f"webhook-timestamp is more than 5 minutes off ({message.lower()})"
    if "Invalid Signature Headers" in message:
        return "webhook-timestamp is not a number of seconds"
    return "webhook-signature matches none of the webhook's secrets"
