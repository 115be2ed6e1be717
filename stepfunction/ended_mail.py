"""``stepfunction.mail_ended``: a mail when an execution record ends other than SUCCEEDED.

Kinto principals are not addresses, so the record says whom to tell: its ``notify`` field,
an email address or a list of them (at most ``MAX_RECIPIENTS``, checked when written), set by
whoever writes the record. The write that ends the record also writes its *notice*
(``on_execution_changed``, inside that write's transaction), and the worker's outbox sends
it after the commit, as it sends a step's mails: once per address, retried after a failure,
an address refused for good listed in the record's ``unreached`` field. A duplicate end
writes nothing, so it mails nothing.
"""

import time

from stepfunction import records
from stepfunction.addresses import addresses_problem, ascii_address, split_reviewers
from stepfunction.mails import Mail
from stepfunction.notices import MAX_RECIPIENTS, key_of, new_notice, one_line
from stepfunction.schema import ABORTED, FAILED, TIMED_OUT


FIELD = "notify"
KIND = "ended"  # a notice's ``kind``: the outbox's ``mail_kinds`` sends it
MAX_CAUSE_CHARS = 800
BAD_ENDS = (FAILED, TIMED_OUT, ABORTED)


def ended_badly(record):
    return bool(record) and not record.get("deleted") and record.get("status") in BAD_ENDS


def recipients(record):
    """The valid, distinct addresses of ``notify`` while the record says it ended badly."""
    if not ended_badly(record):
        return []
    valid, _ = split_reviewers(record.get(FIELD))
    found = []
    for address in valid:
        if key_of(address) not in map(key_of, found):
            found.append(address)
    return found[:MAX_RECIPIENTS]


def notify_problem(value):
    """Why a ``notify`` field can't be stored (checked on every write), or None."""
    return addresses_problem(FIELD, value, MAX_RECIPIENTS)


def changed_notify_problem(new, old):
    """``notify_problem`` of ``new``'s ``notify`` if it changed from ``old``'s, else None (a
    record stored by an earlier version keeps what it holds)."""
    if (new or {}).get(FIELD) == (old or {}).get(FIELD):
        return None
    return notify_problem(new.get(FIELD))


def compose(settings, uri, record, recipient):
    name = uri.rsplit("/", 1)[1]
    status = record.get("status")
    lines = [
        f"The execution {name} ended {status}.",
        "",
        f"State machine: {record.get('stateMachineArn')}",
        f"Started: {record.get('startDate')}",
        f"Stopped: {record.get('stopDate')}",
    ]
    if record.get("error"):
        lines.append(f"Error: {one_line(record['error'], 256)}")
    if record.get("cause"):
        lines.append(f"Cause: {one_line(record['cause'], MAX_CAUSE_CHARS)}")
    if settings.public_url:
        lines += ["", f"Its record: {settings.public_url.rstrip('/')}{uri}"]
    return Mail(
        subject=f"Execution {one_line(name, 80)} ended {status}",
        sender=settings.mail_sender,
        recipients=[ascii_address(recipient) or recipient],
        body="\n".join(lines + [""]),
        extra_headers={"Auto-Submitted": "auto-generated"},
    )


def on_execution_changed(event):
    """ResourceChanged of records, with mail on (inside the write's transaction): an
    execution record that just ended badly, with addresses to tell, is due its mail."""
    request = event.request
    settings = request.registry.stepfunction_settings
    payload = event.payload
    ids = (payload["bucket_id"], payload["collection_id"])
    if not (settings.mail_ended and settings.holds_executions(*ids)):
        return
    for change in event.impacted_objects:
        old, new = change.get("old") or {}, change.get("new")
        uri = records.record_uri(*ids, (new or old)["id"])
        if new is None or new.get("deleted"):
            records.drop_notice(request, uri)
        elif old.get("status") != new.get("status") and recipients(new):
            # A new end (another status): a new notice, whatever the last one sent.
            records.put_notice(request, uri, {**new_notice(time.time()), "kind": KIND})
