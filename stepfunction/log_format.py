"""One readable line per request in Kinto's log, with the classic formatter of ``config.ini``.

Kinto logs each request's summary on ``request.summary`` with an empty message and the
request's fields as the record's attributes (for its JSON and colour formatters): the classic
``%(message)s`` formatter writes an empty line for it. :class:`ReadableFormatter` writes such a
record as Kinto's colour formatter does, without the colours:
``"GET /v1/buckets/b?_limit=2" 200 (3 ms)``, and ``errno=…`` on an error. Any other record is
formatted as usual. (Link tokens in paths are redacted before: ``stepfunction.log_redaction``.)
"""

import logging


SUMMARY = "request.summary"


def summary_line(record):
    """``"METHOD path?query" code (t ms)`` of a request.summary record."""
    query = getattr(record, "querystring", None) or {}
    params = "&".join(f"{key}={value}" for key, value in query.items())
    line = (
        f'"{getattr(record, "method", "?")} {getattr(record, "path", "?")}'
        f'{"?" + params if params else ""}" {getattr(record, "code", "?")} '
        f"({getattr(record, 't', '?')} ms)"
    )
    errno = getattr(record, "errno", 0)
    return f"{line} errno={errno}" if errno else line


class ReadableFormatter(logging.Formatter):
    def formatMessage(self, record):
        if record.name == SUMMARY and not record.message and hasattr(record, "path"):
            record.message = summary_line(record)
        return super().formatMessage(record)
