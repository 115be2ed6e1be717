"""Mails to a step's reviewers: when one is due, and what it says.

A step that becomes pending (created UNANSWERED, by its author or by the worker) with
addresses in its ``reviewer`` field gets a *notice*: a private storage object, written in the
step's own transaction by the ``ResourceChanged`` listener below, that says when the next mail
is due, and, per recipient, how many mails SMTP accepted for them (``recipients``). An address
added later is due its first mail at once. The worker's outbox (``stepfunction.worker.outbox``)
sends what is due after the write committed, never inside it, and reschedules reminders. A
closed step's notice is kept, never due again: its nonce tells the step's links from those of
a record created later under the same id. Only notices that may be due are in the outbox's
index (``records.due_notices``), so a pass costs the same beside any number of closed steps.
"""

import json
import secrets
import time
from urllib.parse import quote, urlencode

from stepfunction import records
from stepfunction.addresses import ascii_address, deadline_seconds
from stepfunction.links import PATH as LINK_PATH
from stepfunction.links import Link, expiry
from stepfunction.schema import FAIL, SUCCEED, UNANSWERED, parse_arn


# A due time that never comes: the step is closed, or its reminders are all sent.
NEVER = 2.0**53
# Hostile or careless input must not turn the plugin into a mass mailer.
MAX_RECIPIENTS = 20
MAX_SUBJECT_CHARS = 120
MAX_SUMMARY_CHARS = 800
DEADLINE_FIELD = "deadline"
# A notice due longer ago than this is overdue (the heartbeat's check reads them).
OVERDUE_SECONDS = 300


def pending(record):
    return (
        bool(record)
        and not record.get("deleted")
        and record.get("status", UNANSWERED) == UNANSWERED
    )


def reviewers_of(record):
    """The valid, distinct addresses of the record's ``reviewer`` field (one or a list)."""
    value = (record or {}).get("reviewer")
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    addresses = []
    for address in values:
        address = address.strip(" ") if isinstance(address, str) else address
        if ascii_address(address) and key_of(address) not in map(key_of, addresses):
            addresses.append(address)
    return addresses[:MAX_RECIPIENTS]


def key_of(address):
    """How a notice knows a recipient: the address, case aside."""
    return address.lower()


def is_reviewer(record, address):
    return address.lower() in (a.lower() for a in reviewers_of(record))


def deadline_of(record):
    """The step's ``deadline`` (RFC 3339, or seconds since the epoch) as epoch seconds."""
    return deadline_seconds((record or {}).get(DEADLINE_FIELD))


def one_line(value, limit):
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def subject_of(record):
    subject = record.get("subject")
    text = subject if isinstance(subject, str) and subject.strip() else record["id"]
    return one_line(text, MAX_SUBJECT_CHARS)


def summary_of(record):
    """A short text of the step's input, for a mail or a page (never parsed as markup)."""
    value = record.get("input")
    if value is None:
        return ""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_SUMMARY_CHARS else text[:MAX_SUMMARY_CHARS] + "\n…"


def workflow_of(record):
    """``[(label, name)]`` of the state machine and execution the record names."""
    names = []
    for label, field in (("State machine", "stateMachineArn"), ("Execution", "executionArn")):
        arn = parse_arn(record.get(field))
        if arn is not None:
            names.append((label, arn.name))
    return names


def dashboard_url(public_url, bucket_id, collection_id, record_id=None):
    """The dashboard on the step's collection, on the step's own view when ``record_id``."""
    query = urlencode({"bucket": bucket_id, "collection": collection_id})
    view = f"#/steps/{quote(record_id, safe='')}" if record_id else ""
    return f"{public_url}stepfunction/dashboard/?{query}{view}"


def link_urls(settings, signer, bucket_id, collection_id, record, recipient, nonce, now):
    """``({answer: url}, expires)`` of a recipient's links, or ``({}, None)`` without links."""
    if signer is None:
        return {}, None
    expires = expiry(now, settings.link_ttl, deadline_of(record))
    urls = {}
    for answer in (SUCCEED, FAIL):
        link = Link(bucket_id, collection_id, record["id"], recipient, answer, nonce, expires)
        path = LINK_PATH.format(token=signer.sign(link))
        urls[answer] = settings.public_url.rstrip("/") + path
    return urls, expires


def new_notice(now):
    """``recipients``: ``{key_of(address): {"n": mails accepted, "due", "tries", ...}}``."""
    return {"nonce": secrets.token_urlsafe(9), "due": now, "lease": 0, "recipients": {}}


def overdue_notices(request, now=None, grace=None, limit=10):
    """Notices whose mail is due for more than ``grace`` seconds (``OVERDUE_SECONDS``), failed
    sends and their retries included, and not being sent: what the heartbeat reports.
    ``[notice]``, each naming its record's ``uri``; reads the outbox's index only (one
    indexed query)."""
    now = time.time() if now is None else now
    grace = OVERDUE_SECONDS if grace is None else grace
    return records.due_notices(request, now - grace, limit, free_at=now, by="since")


def added_reviewers(old, new):
    """Addresses of ``new``'s reviewers that ``old`` did not have."""
    before = {key_of(a) for a in reviewers_of(old)} if pending(old) else set()
    return [a for a in reviewers_of(new) if key_of(a) not in before]


def on_step_changed(event):
    """ResourceChanged of records, with mail on (inside the write's transaction): a step that
    became pending with reviewers is due a mail; a closed one never again."""
    request = event.request
    settings = request.registry.stepfunction_settings
    payload = event.payload
    bucket_id, collection_id = payload["bucket_id"], payload["collection_id"]
    if not settings.holds_steps(bucket_id, collection_id):
        return
    for change in event.impacted_objects:
        old, new = change.get("old"), change.get("new")
        record_id = (new or old)["id"]
        uri = records.record_uri(bucket_id, collection_id, record_id)
        if new is None or new.get("deleted"):
            records.drop_notice(request, uri)
        elif pending(new) and added_reviewers(old, new):
            notice = records.get_notice(request, uri) if old else None
            now = time.time()
            if notice is None:
                records.put_notice(request, uri, new_notice(now))
            elif not notice.get("closed") and notice["due"] > now:
                records.put_notice(request, uri, {**notice, "due": now})  # a first mail
        elif pending(old) and not pending(new):
            notice = records.get_notice(request, uri)
            if notice is not None:
                records.put_notice(request, uri, {**notice, "due": NEVER, "closed": True})


def on_step_committed(event):
    """AfterResourceChanged of records, with mail on: wake this process's outbox, if any."""
    event.request.registry.stepfunction_outbox_wake.set()
