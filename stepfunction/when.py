"""Times as people read them: "in 3 hours (Sun 29 Nov 2026, 15:07 UTC)", for mails and pages."""

import datetime


MINUTE, HOUR, DAY = 60, 3600, 86400


def _count(n, unit):
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def span_words(seconds):
    """A duration, rounded to what matters: "less than a minute", "3 hours", "2 days"."""
    seconds = abs(seconds)
    if seconds < MINUTE:
        return "less than a minute"
    if seconds < HOUR:
        return _count(round(seconds / MINUTE), "minute")
    if seconds < 2 * DAY:
        return _count(round(seconds / HOUR), "hour")
    return _count(round(seconds / DAY), "day")


def relative(epoch, now):
    """``epoch`` seen from ``now``: "in 3 hours", or "2 days ago"."""
    words = span_words(epoch - now)
    return f"in {words}" if epoch >= now else f"{words} ago"


def absolute(epoch):
    """``epoch`` as a date and time in UTC: "Sun 29 Nov 2026, 15:07 UTC"."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return f"{moment:%a %d %b %Y, %H:%M} UTC"


def both(epoch, now):
    """``"in 3 hours (Sun 29 Nov 2026, 15:07 UTC)"``."""
    return f"{relative(epoch, now)} ({absolute(epoch)})"


def iso_seconds(value):
    """An ISO 8601 time (as the answer's ``at``) as seconds since the epoch, or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()
