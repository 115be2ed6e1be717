"""The mail a step's reviewer gets: a plain-text part and an HTML part (multipart/alternative).

Both say the same: the step's subject, who asked, the workflow, the deadline and until when the
links work (in words and as a UTC time), the input as ``name: value`` lines, and the Approve and
Reject links. The HTML part shows the links as buttons, never as text; everything the step's
author wrote is escaped (a hostile subject or input renders as text). The dashboard is offered
only to a reviewer who can sign in to it (``signs_in``), or when there are no links.
"""

import html
import json
import time

from pyramid_mailer.message import Message

from stepfunction import records, when
from stepfunction.addresses import ascii_address
from stepfunction.decision_fields import progress_text, still_needed
from stepfunction.notices import (
    dashboard_url,
    deadline_of,
    link_urls,
    one_line,
    subject_of,
    summary_of,
    workflow_of,
)
from stepfunction.schema import FAIL, SUCCEED


MAX_ROWS = 20
MAX_VALUE_CHARS = 300
REQUESTER_FIELD = "requester"
BUTTON = (
    "display:inline-block;padding:12px 28px;margin:0 12px 12px 0;border-radius:6px;"
    "color:#ffffff;text-decoration:none;font-weight:600;font-size:16px;background:{color}"
)
COLORS = {SUCCEED: "#1a7f37", FAIL: "#b42318"}
VERBS = {SUCCEED: "Approve", FAIL: "Reject"}


def requester_of(record):
    """Who asked: the record's ``requester`` (set by the step's author), or None."""
    value = (record or {}).get(REQUESTER_FIELD)
    return one_line(value, 120) if isinstance(value, str) and value.strip() else None


def value_text(value):
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def input_rows(record):
    """``[(name, value text)]`` of an object input (nested values as compact JSON), or None
    when the input is not an object (then ``summary_of`` shows it)."""
    value = (record or {}).get("input")
    if not isinstance(value, dict):
        return None
    rows = [(str(k), value_text(v)) for k, v in list(value.items())[:MAX_ROWS]]
    if len(value) > MAX_ROWS:
        rows.append(("…", f"{len(value) - MAX_ROWS} more"))
    return rows


def facts_of(record, expires, now):
    """``[(label, text)]``: who asked, the workflow, the deadline, the links' expiry."""
    facts = []
    requester = requester_of(record)
    if requester:
        facts.append(("Asked by", requester))
    facts += workflow_of(record)
    if progress_text(record):  # a quorum: how many approvals the step still needs
        facts.append(("Approvals", f"{progress_text(record)}: {still_needed(record)}"))
    deadline = deadline_of(record)
    if deadline is not None:
        facts.append(("Deadline", when.both(deadline, now)))
    if expires is not None:
        facts.append(("Links expire", when.both(expires, now)))
    return facts


def text_body(subject, facts, rows, summary, urls, recipient, dashboard):
    lines = ["Hello,", "", "A workflow waits for your decision on this step:", "", f"  {subject}"]
    lines += [""] + [f"{label}: {text}" for label, text in facts]
    if rows is not None and rows:
        lines += ["", "Its input:", ""]
        for name, text in rows:  # a value's own lines, indented under its first
            lines.append(f"    {name}: " + text.replace("\n", "\n" + " " * (6 + len(name))))
    elif summary:
        lines += ["", "Its input:", "", *("    " + line for line in summary.splitlines())]
    if urls:
        lines += [
            "",
            f"Approve: {urls[SUCCEED]}",
            "",
            f"Reject:  {urls[FAIL]}",
            "",
            f"These links are for {recipient} alone, and answer once: the first answer closes "
            "the step.",
            "Opening one shows a confirmation page; nothing is sent before you confirm.",
        ]
    if dashboard:
        lines += ["", f"{'Or answer' if urls else 'Answer'} it on the dashboard: {dashboard}"]
    return "\n".join([*lines, ""])


def _e(value):
    return html.escape(str(value), quote=True)


def html_body(subject, facts, rows, summary, urls, recipient, dashboard):
    cell = "padding:4px 12px 4px 0;vertical-align:top;text-align:left"
    # Labels a fixed width, values the rest: on a phone a long value wraps (the body's
    # overflow-wrap) instead of squeezing the labels letter by letter.
    table = (
        '<table style="border-collapse:collapse;margin:0 0 16px;table-layout:fixed;width:100%">'
    )
    heading = f"{cell};font-weight:600;width:8.5em"
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(subject)}</title></head>"
        '<body style="margin:0;padding:16px;font-family:system-ui,-apple-system,Segoe UI,'
        "Roboto,sans-serif;color:#1d2330;background:#ffffff;line-height:1.45;"
        'overflow-wrap:anywhere">'
        '<div role="main" style="max-width:600px">'
        '<p style="margin:0 0 8px">A workflow waits for your decision on this step:</p>'
        f'<h1 style="font-size:20px;margin:0 0 16px">{_e(subject)}</h1>'
    ]
    if facts:
        parts.append(table)
        for label, text in facts:
            parts.append(
                f'<tr><th scope="row" style="{heading}">{_e(label)}</th>'
                f'<td style="{cell}">{_e(text)}</td></tr>'
            )
        parts.append("</table>")
    if rows:
        parts.append('<h2 style="font-size:16px;margin:16px 0 8px">Input</h2>')
        parts.append(table)
        for name, text in rows:
            parts.append(
                f'<tr><th scope="row" style="{heading}">{_e(name)}</th>'
                f'<td style="{cell};white-space:pre-wrap;word-break:break-word">{_e(text)}</td>'
                "</tr>"
            )
        parts.append("</table>")
    elif summary:
        parts.append('<h2 style="font-size:16px;margin:16px 0 8px">Input</h2>')
        parts.append(
            '<pre style="background:#f0f1f4;padding:8px;white-space:pre-wrap;'
            f'word-break:break-word">{_e(summary)}</pre>'
        )
    if urls:
        parts.append('<p style="margin:24px 0 12px">')
        for answer in (SUCCEED, FAIL):
            style = BUTTON.format(color=COLORS[answer])
            parts.append(f'<a href="{_e(urls[answer])}" style="{style}">{VERBS[answer]}</a>')
        parts.append(
            "</p>"
            f'<p style="margin:0 0 16px;color:#4a5160">These buttons are for {_e(recipient)} '
            "alone, and answer once: the first answer closes the step. Each opens a "
            "confirmation page: nothing is sent before you confirm.</p>"
        )
    if dashboard:
        lead = "Or answer it on" if urls else "Answer it on"
        parts.append(
            f'<p style="margin:0 0 16px">{lead} <a href="{_e(dashboard)}">the dashboard</a>.</p>'
        )
    parts.append("</div></body></html>")
    return "".join(parts)


def compose(settings, signer, uri, record, recipient, nonce, reminder, now=None, signs_in=False):
    """The mail for one reviewer of a pending step (``reminder``: how many they got before;
    ``signs_in``: whether they can sign in to the dashboard)."""
    now = time.time() if now is None else now
    bucket_id, collection_id, record_id = records.parse_record_uri(uri)
    subject = subject_of(record)
    urls, expires = link_urls(
        settings, signer, bucket_id, collection_id, record, recipient, nonce, now
    )
    dashboard = None
    if signs_in or not urls:  # without links, the dashboard is the only way to answer
        dashboard = dashboard_url(settings.public_url, bucket_id, collection_id, record_id)
    parts = (
        subject,
        facts_of(record, expires, now),
        input_rows(record),
        summary_of(record),
        urls,
        recipient,
        dashboard,
    )
    prefix = f"Reminder ({reminder}): " if reminder else ""
    return Mail(
        subject=f"{prefix}Your review is needed: {subject}",
        sender=settings.mail_sender,
        recipients=[ascii_address(recipient) or recipient],
        body=text_body(*parts),
        html=html_body(*parts),
        extra_headers={"Auto-Submitted": "auto-generated"},
    )


def signs_in(address, principals):
    """Whether ``address`` is known as one of ``principals`` (those that may answer the step):
    an account or an OpenID user whose user id is the address. A mailed link's own principal
    (``link:``) and hashed ids (Basic auth) never match: such a reviewer has the links alone."""
    address = address.lower()
    for principal in principals:
        prefix, _, userid = principal.partition(":")
        if userid and prefix != "link" and userid.lower() == address:
            return True
    return False


class Mail(Message):
    """pyramid_mailer's message, written with CRLF line ends: servers that refuse bare LFs
    (a defence against SMTP smuggling; aiosmtpd in the tests) take it too."""

    def to_message(self):
        message = super().to_message()
        message.policy = message.policy.clone(linesep="\r\n")
        return message
