"""What may be asked of whom, and until when: reviewers' addresses and a step's deadline.

Addresses are checked with ``email-validator`` (syntax only: no DNS, no network), plus what it
allows but a mail server may route elsewhere: ``%`` and ``!`` routing and quoted local parts.
A ``deadline`` is RFC 3339 or seconds since the epoch, within years 1970 to 9999.
"""

import datetime
import math

from email_validator import EmailNotValidError, validate_email


MAX_ADDRESS_CHARS = 254
ROUTING = frozenset('%!"')
# 1970-01-01 to 9999-12-31 (seconds since the epoch): what a datetime can show.
EARLIEST, LATEST = 0.0, 253402300799.0


def ascii_address(value):
    """The address to give SMTP (its domain as IDNA), or None when ``value`` is not one."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ADDRESS_CHARS:
        return None
    if value != value.strip() or ROUTING & set(value.rpartition("@")[0]):
        return None
    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return checked.ascii_email


def split_reviewers(value):
    """``(valid, invalid)`` of a ``reviewer`` field (one address or a list of them)."""
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    valid, invalid = [], []
    for address in values:
        (valid if ascii_address(address) else invalid).append(address)
    return valid, invalid


def addresses_problem(field, value, most=None):
    """Why a field of addresses (one or a list, ``most`` at most) can't be stored, or None
    (absent or null is fine)."""
    if value is None:
        return None
    if not isinstance(value, str | list):
        return f"{field} must be an email address or a list of them"
    _, invalid = split_reviewers(value)
    if isinstance(value, list) and not all(isinstance(a, str) for a in value):
        return f"{field} must be an email address or a list of them"
    if invalid:
        shown = ascii(invalid[0])[:80]
        return f"{field} holds {shown}, which is not an email address this server can mail"
    if most is not None and isinstance(value, list) and len(value) > most:
        return f"{field} holds more than {most} addresses"
    return None


def reviewer_problem(value):
    """Why a ``reviewer`` field can't be stored, or None (absent or null is fine)."""
    return addresses_problem("reviewer", value)


def deadline_seconds(value):
    """A ``deadline`` as seconds since the epoch, or None when absent or out of range."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=datetime.UTC)
            seconds = parsed.timestamp()
        except (ValueError, OverflowError, OSError):
            return None
    else:
        return None
    return seconds if math.isfinite(seconds) and EARLIEST <= seconds <= LATEST else None


def deadline_problem(value):
    """Why a ``deadline`` can't be stored, or None (absent or null is fine)."""
    if value is None or deadline_seconds(value) is not None:
        return None
    return "deadline must be an RFC 3339 date (or seconds since the epoch) between 1970 and 9999"


def asking_problem(data):
    """``(field, why)`` of the first ``reviewer``/``deadline`` problem of a record, or None."""
    if not isinstance(data, dict):
        return None
    for field, check in (("reviewer", reviewer_problem), ("deadline", deadline_problem)):
        problem = check(data.get(field))
        if problem:
            return field, problem
    return None
