"""Link tokens never reach a log line, whatever the formatter.

A link's token is its credential, and it is in the link's path. Kinto logs the path of every
request in ``request.summary`` (``path``, ``querystring``; at DEBUG also the request's
headers, where ``Referer`` carries the link, and the response's, where ``Set-Cookie`` names
the link's path, and its body, whose form posts to it), and of a failed one in its error
view's record (on the root logger). Its formatters print these fields (the JSON and colour
ones) or not (the classic one): this filter, on those two loggers, replaces every token in a
record's message, arguments and fields before any handler or formatter sees it.
"""

import logging
import re


# Kinto's error view logs to the root logger itself ("" is the root).
LOGGERS = ("request.summary", "")
LINK_TOKEN = re.compile(r"(stepfunction/links/)[^/?#\s\"'<>;&,]+")
LINK_TOKEN_BYTES = re.compile(rb"(stepfunction/links/)[^/?#\s\"'<>;&,]+")
REDACTED = "(token)"
# LogRecord attributes that are logging's own, not the fields a caller passed in ``extra``.
_OWN = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact(value):
    """``value`` with every link token replaced, at any depth of dicts, lists and tuples."""
    if isinstance(value, str):
        return LINK_TOKEN.sub(r"\g<1>" + REDACTED, value)
    if isinstance(value, bytes):
        return LINK_TOKEN_BYTES.sub(rb"\g<1>" + REDACTED.encode(), value)
    if isinstance(value, dict):
        return {redact(k): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


class RedactLinks(logging.Filter):
    def filter(self, record):
        for name, value in list(vars(record).items()):
            if name not in _OWN:
                setattr(record, name, redact(value))
        if record.args:
            record.args = redact(record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        elif LINK_TOKEN.search(str(record.msg)):  # an exception, as the error view logs it
            record.msg = redact(str(record.msg))
        return True


def install():
    """Put the filter on Kinto's loggers that name request paths (once per process)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactLinks) for f in logger.filters):
            logger.addFilter(RedactLinks())
