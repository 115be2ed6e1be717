"""``stepfunction.mail_ended``: a mail when an execution record ends other than SUCCEEDED.

Kinto principals are not addresses, so the record says whom to tell: its ``notify`` field,
an email address or a list of them (at most ``MAX_RECIPIENTS``; others are left out), set by
whoever writes the record. Sent once, after the write that ended the record is committed (a
duplicate event writes nothing, so mails nothing); a send that fails is logged, not retried.
"""

import logging

from stepfunction import records, transactions
from stepfunction.addresses import ascii_address, split_reviewers
from stepfunction.mails import Mail
from stepfunction.notices import MAX_RECIPIENTS, one_line


logger = logging.getLogger(__name__)

FIELD = "notify"
MAX_CAUSE_CHARS = 800


def recipients(record):
    valid, _ = split_reviewers((record or {}).get(FIELD))
    seen, found = set(), []
    for address in valid:
        if address.lower() not in seen:
            seen.add(address.lower())
            found.append(address)
    return found[:MAX_RECIPIENTS]


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


def mail_ended(registry, name):
    """Mail the ``notify`` addresses of the execution record ``name`` (just ended)."""
    settings = registry.stepfunction_settings
    if not (settings.mail_ended and settings.mail_enabled):
        return 0
    bucket_id, collection_id = settings.executions
    record = transactions.commit(
        registry, lambda r: records.read_record(r, bucket_id, collection_id, name)
    )
    if record is None or record.get("status") in (None, "RUNNING", "SUCCEEDED"):
        return 0
    uri = records.record_uri(bucket_id, collection_id, name)
    sent = 0
    for address in recipients(record):
        try:
            registry.stepfunction_mailer.send_immediately(compose(settings, uri, record, address))
            sent += 1
        except Exception as e:
            logger.warning("%s: mail to %s failed: %s", uri, address, type(e).__name__)
    if sent:
        logger.info("%s: ended %s, mailed %d address(es)", uri, record["status"], sent)
    return sent
