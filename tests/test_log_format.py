"""Kinto's request summaries as one readable line (config.ini's formatter)."""

import logging

from stepfunction.log_format import ReadableFormatter


def record(name, msg="", **fields):
    made = logging.LogRecord(name, logging.INFO, __file__, 1, msg, (), None)
    made.__dict__.update(fields)
    return made


def test_a_request_summary_is_one_readable_line():
    formatter = ReadableFormatter("%(levelname)s [%(name)s] %(message)s")
    summary = record(
        "request.summary",
        method="GET",
        path="/v1/buckets/b/collections/c/records",
        querystring={"_limit": "2"},
        code=200,
        t=3,
        errno=0,
    )
    line = formatter.format(summary)
    assert (
        line
        == 'INFO [request.summary] "GET /v1/buckets/b/collections/c/records?_limit=2" 200 (3 ms)'
    )
    failed = record("request.summary", method="POST", path="/v1/x", code=403, t=1, errno=121)
    assert formatter.format(failed).endswith('"POST /v1/x" 403 (1 ms) errno=121')


def test_other_records_are_left_as_they_are():
    formatter = ReadableFormatter("%(message)s")
    assert formatter.format(record("stepfunction", "hello %s")) == "hello %s"
    assert formatter.format(record("request.summary", "said", path="/v1/")) == "said"
