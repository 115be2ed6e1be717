"""Errors of the plugin's endpoints, in Kinto's format (``kinto.core.errors.http_error``)."""

import logging

from kinto.core.errors import ERRORS, http_error
from pyramid import httpexceptions


logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


def error(status, errno, message, details=None, **headers):
    response = http_error(status(), errno=errno, message=message, details=details)
    response.headers.update(headers)
    return response


def bad_record(problems):
    details = [{"location": "record", "name": k, "description": v} for k, v in problems.items()]
    message = "; ".join(f"{k}: {v}" for k, v in problems.items())
    return error(
        httpexceptions.HTTPBadRequest,
        ERRORS.INVALID_PARAMETERS,
        f"This record can't be answered: {message}",
        details,
    )


def conflict(message):
    return error(httpexceptions.HTTPConflict, ERRORS.CONSTRAINT_VIOLATED, message)


def gone(message):
    # Errno 110, "invalid token / id": the step's task token no longer resumes anything.
    return error(httpexceptions.HTTPGone, ERRORS.INVALID_RESOURCE_ID, message)


def unavailable(message):
    return error(
        httpexceptions.HTTPServiceUnavailable,
        ERRORS.BACKEND,
        message,
        **{"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def not_step_functions(uri, e):
    """Something that is not Step Functions answered: nothing is recorded (errno 201, as for
    any backend failure; 502: the upstream's reply can't be trusted)."""
    logger.warning("%s: the endpoint does not answer as Step Functions: %s", uri, e.message)
    return error(
        httpexceptions.HTTPBadGateway,
        ERRORS.BACKEND,
        "The Step Functions endpoint did not answer as Step Functions: nothing was recorded "
        "(see stepfunction.aws_endpoint_url).",
    )


def closed_reason(record):
    """Why a step closed with its execution, in one sentence."""
    closed = record.get("closed") if isinstance(record.get("closed"), dict) else {}
    how = closed.get("executionStatus") or "ended"
    return (
        f"This step closed with its execution ({how} at {closed.get('at') or 'an unknown time'}): "
        "Step Functions no longer waits for an answer."
    )
