"""A write's body, read exactly as Kinto reads it, or refused before anything is stored.

Kinto routes a record's write by the media type before ``;`` (``application/json``, or for a
PATCH ``application/merge-patch+json`` and ``application/json-patch+json``), decodes the body
in the declared charset and parses it with its own JSON parser (``request.json_body``: Kinto
installs rapidjson in WebOb). It treats a body as merge or JSON-Patch only when the whole
``Content-Type`` header is that media type, and it ignores ``Content-Encoding``.

The guard decides on what it reads, and Kinto's memory backend can't take a write back: so a
body is read here with ``request.json_body`` itself, and a write whose reading could differ
from Kinto's (another charset than UTF-8, a content coding, a media type Kinto doesn't route,
a patch type with parameters, a body that doesn't parse) is refused, in Kinto's error format.
"""

from kinto.core.errors import ERRORS, http_error
from pyramid import httpexceptions

from stepfunction.nesting import MAX_DEPTH, holds_nul, too_deep


JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


def read_body(request):
    """``(kind, body)`` of a POST, PUT or PATCH: ``kind`` is ``JSON``, ``MERGE_PATCH`` or
    ``JSON_PATCH``, ``body`` the parsed JSON (``{}`` for an empty body, as Kinto reads it)."""
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding not in ("", "identity"):
        raise _unsupported(
            "Content-Encoding",
            f"Content-Encoding {coding!r} is not accepted here: send the body unencoded.",
        )
    header = request.headers.get("Content-Type", "")
    media_type = request.content_type  # what Kinto's routing compares, parameters left off
    if media_type in (MERGE_PATCH, JSON_PATCH) and request.method == "PATCH":
        if header != media_type:
            raise _unsupported(
                "Content-Type",
                f"Content-Type must be exactly {media_type!r} here, without parameters "
                "(Kinto would read the body otherwise).",
            )
        kind = media_type
    elif media_type in (JSON, ""):  # Kinto reads a body without a Content-Type as JSON
        kind = JSON
    else:
        allowed = [JSON, MERGE_PATCH, JSON_PATCH] if request.method == "PATCH" else [JSON]
        raise _unsupported("Content-Type", f"Content-Type must be one of {allowed} here.")
    if request.charset != "UTF-8":
        raise _unsupported(
            "Content-Type",
            f"The body is declared in {request.charset[:40]!r}: bodies are read in UTF-8 "
            "(send charset=utf-8, or none).",
        )
    if not request.body:
        return kind, {}
    try:
        body = request.json_body  # Kinto's own parser
    except ValueError as e:  # UnicodeDecodeError included
        raise _invalid(f"Invalid JSON: {e}") from None
    expected = list if kind == JSON_PATCH else dict
    if not isinstance(body, expected):
        raise _invalid(f"The body must be a JSON {'array' if expected is list else 'object'}.")
    return kind, body


def json_only(request, **kwargs):
    """A cornice validator for the plugin's own endpoints (answer, delegate, stop): their body
    is read as Kinto reads a record's (UTF-8, unencoded JSON) or refused, 415 or 400, before
    anything is sent to Step Functions; colander's validator, after it, reads the same.

    What the record could not hold once Step Functions accepted the call is refused too (400):
    a NUL character (PostgreSQL's JSONB stores none), a value nested past ``MAX_DEPTH``."""
    _, body = read_body(request)
    if holds_nul(body):
        raise _invalid("The body holds a NUL character (\\u0000): it can't be stored.")
    if too_deep(body):
        raise _invalid(f"The body nests objects and arrays more than {MAX_DEPTH} deep.")


def _unsupported(header, message):
    return http_error(
        httpexceptions.HTTPUnsupportedMediaType(),
        errno=ERRORS.INVALID_PARAMETERS,
        message=message,
        details=[{"location": "header", "name": header, "description": message}],
    )


def _invalid(message):
    return http_error(
        httpexceptions.HTTPBadRequest(),
        errno=ERRORS.INVALID_PARAMETERS,
        message=message,
        details=[{"location": "body", "name": "", "description": message}],
    )
