"""Step Functions' execution status, as EventBridge or DescribeExecution tells it, and what an
execution record must become: pure functions, no I/O.

An EventBridge "Step Functions Execution Status Change" event (``source: aws.states``) holds
in ``detail``: ``executionArn``, ``stateMachineArn``, ``name``, ``status``, ``startDate`` and
``stopDate`` (epoch milliseconds), ``input``/``output`` (JSON text), ``error``, ``cause``.
Events may come late, twice, or out of order: ``changes`` never lets an older one overwrite
a newer status, and returns nothing when the record already says it all.
"""

import datetime
import json
from typing import NamedTuple

from stepfunction.nesting import NUL, holds_nul, too_deep
from stepfunction.schema import parse_arn


SOURCE = "aws.states"
DETAIL_TYPE = "Step Functions Execution Status Change"
RUNNING = "RUNNING"
ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
EXECUTION_STATUSES = (RUNNING, *ENDED)
ALIASES = {"PENDING_REDRIVE": RUNNING}  # about to run again: the record says RUNNING
MAX_TEXT_CHARS = 32768  # Step Functions' own bound on ``cause``


class Status(NamedTuple):
    """One execution's status at one moment; dates as ISO 8601 UTC strings (or None)."""

    execution_arn: str
    name: str
    status: str
    start_date: str | None
    stop_date: str | None
    output: object = None
    error: str | None = None
    cause: str | None = None


def iso(value):
    """An ISO 8601 UTC string of epoch milliseconds, a datetime, or such a string; else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            value = datetime.datetime.fromtimestamp(value / 1000, datetime.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime.datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).isoformat(timespec="milliseconds")


def _instant(value):
    text = iso(value)
    return datetime.datetime.fromisoformat(text) if text else None


def output_value(value):
    """An execution's output (JSON text) as a value; text that is not JSON, or whose value
    nests deeper than ``nesting.MAX_DEPTH`` or holds a NUL character (which PostgreSQL can't
    store), as text (a value like that: None)."""
    if not isinstance(value, str):
        return None if too_deep(value) or holds_nul(value) else value
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return _text(value, limit=None)
    return value if too_deep(parsed) or holds_nul(parsed) else parsed


def _text(value, limit=MAX_TEXT_CHARS):
    """A text to store: a NUL character (which PostgreSQL can't store) becomes U+FFFD."""
    return value.replace(NUL, "\ufffd")[:limit] if isinstance(value, str) else None


def _status(execution_arn, name, status, start, stop, output, error, cause):
    status = ALIASES.get(status, status)
    arn = parse_arn(execution_arn)
    if arn is None or arn.kind != "execution" or status not in EXECUTION_STATUSES:
        return None
    if not isinstance(name, str) or arn.name.rsplit(":", 1)[-1] != name:
        return None
    if start is not None and iso(start) is None or stop is not None and iso(stop) is None:
        return None
    ended = status in ENDED
    return Status(
        execution_arn,
        name,
        status,
        iso(start),
        iso(stop) if ended else None,
        output_value(output) if status == "SUCCEEDED" else None,
        _text(error) if ended else None,
        _text(cause) if ended else None,
    )


def parse_event(body):
    """The ``Status`` an SQS message body (an EventBridge event, JSON text) carries, or None
    when it is not a well-formed status-change event."""
    try:
        event = json.loads(body) if isinstance(body, str | bytes) else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict) or event.get("source") != SOURCE:
        return None
    detail = event.get("detail")
    if event.get("detail-type") != DETAIL_TYPE or not isinstance(detail, dict):
        return None
    return _status(
        detail.get("executionArn"),
        detail.get("name"),
        detail.get("status"),
        detail.get("startDate"),
        detail.get("stopDate"),
        detail.get("output"),
        detail.get("error"),
        detail.get("cause"),
    )


def from_description(described):
    """The ``Status`` of a DescribeExecution response, or None if it is not one."""
    if not isinstance(described, dict):
        return None
    arn = described.get("executionArn")
    return _status(
        arn,
        described.get("name"),
        described.get("status"),
        described.get("startDate"),
        described.get("stopDate"),
        described.get("output"),
        described.get("error"),
        described.get("cause"),
    )


EPOCH = datetime.datetime.min.replace(tzinfo=datetime.UTC)


def _order(status, stop):
    """How far along an execution is: running, then ended (a later end after an earlier).
    A redriven execution (RUNNING again after an end) is not followed."""
    ended = status in ENDED
    return (ended, (_instant(stop) or EPOCH) if ended else EPOCH)


def _same(field, old, new):
    if field in ("startDate", "stopDate") and old is not None and new is not None:
        return _instant(old) == _instant(new)
    return old == new


def changes(record, status):
    """The fields to write into the execution ``record`` for ``status``: ``{}`` when the
    record already says it, or says something newer (an ended execution never goes back to
    RUNNING; of two ends, the later ``stopDate`` wins)."""
    current = record.get("status")
    if current in EXECUTION_STATUSES:
        here = _order(current, record.get("stopDate"))
        there = _order(status.status, status.stop_date)
        if there < here:
            return {}
    wanted = {"status": status.status}
    if status.start_date:
        wanted["startDate"] = status.start_date
    if status.status in ENDED:
        wanted["stopDate"] = status.stop_date
        for field in ("output", "error", "cause"):  # what the event lacks is left as it is
            if getattr(status, field) is not None:
                wanted[field] = getattr(status, field)
    return {
        field: value
        for field, value in wanted.items()
        if not _same(field, record.get(field), value)
        and not (value is None and field not in record)
    }
