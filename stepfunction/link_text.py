"""What a link page says of its step: the facts, the input, and who answered it and when.

People are shown by name, never by a hashed principal: a link's address (``link:<email>``), an
account's user id (``account:<id>``), a name the dashboard recorded for the principal when
there is one (``records.get_names``), else "a signed-in reviewer". The link's own recipient is
"you". Everything the step's author wrote is escaped here.
"""

import html

from stepfunction import records, when
from stepfunction.mails import input_rows, requester_of
from stepfunction.notices import deadline_of, subject_of, summary_of, workflow_of
from stepfunction.schema import FAIL, SUCCEED, TIMED_OUT


DONE = {SUCCEED: "approved", FAIL: "rejected"}
SOMEONE = "a signed-in reviewer"


def _e(value):
    return html.escape(str(value), quote=True)


def facts(record, now, expires=None):
    """``[(label, text)]`` of the step: what, who asked, the workflow, until when."""
    rows = [("Step", subject_of(record))]
    requester = requester_of(record)
    if requester:
        rows.append(("Asked by", requester))
    rows += workflow_of(record)
    deadline = deadline_of(record)
    if deadline is not None:
        rows.append(("Deadline", when.both(deadline, now)))
    if expires is not None:
        rows.append(("This link expires", when.both(expires, now)))
    return rows


def step_html(record, now, expires=None):
    """The step, as a page shows it (all of it escaped)."""
    parts = ["<dl>"]
    for label, value in facts(record, now, expires):
        parts.append(f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>")
    parts.append("</dl>")
    rows = input_rows(record)
    if rows:
        parts.append('<h2>Input</h2><table class="input"><tbody>')
        for name, value in rows:
            parts.append(f'<tr><th scope="row">{_e(name)}</th><td>{_e(value)}</td></tr>')
        parts.append("</tbody></table>")
    elif summary_of(record):
        parts.append(f"<h2>Input</h2><pre>{_e(summary_of(record))}</pre>")
    return "".join(parts)


def name_of(request, principal, audit=None):
    """A readable name for the principal who answered (see the module's docstring)."""
    if isinstance(audit, dict) and isinstance(audit.get("name"), str) and audit["name"].strip():
        return audit["name"].strip()[:100]
    kind, _, rest = principal.partition(":")
    if kind in ("account", "link") and rest:
        return rest
    recorded = getattr(records, "get_names", None)  # the dashboard's names, where kept
    if recorded is not None:
        try:
            name = recorded(request, {principal}).get(principal)
        except Exception:  # a name is a nicety: the page shows without it
            name = None
        if isinstance(name, str) and name.strip():
            return name.strip()[:100]
    return SOMEONE


def answered(request, record, link, now):
    """``(title, [paragraph])`` of a step that no longer waits, as the link's recipient reads it:
    this very link used, another of their buttons used, or answered elsewhere by someone."""
    status = record.get("status")
    if status == TIMED_OUT:
        return "This step timed out", [
            "The workflow no longer waits for an answer: nothing can be sent any more."
        ]
    audit = record.get("answer") if isinstance(record.get("answer"), dict) else {}
    answer = audit.get("answer", status)
    done = DONE.get(answer, str(answer).lower())
    at = when.iso_seconds(audit.get("at"))
    moment = f" {when.both(at, now)}" if at is not None else ""
    by = audit.get("by")
    if by == f"link:{link.recipient}":
        button = "Approve" if answer == SUCCEED else "Reject"
        title = "This link was already used" if answer == link.answer else "You already answered"
        return title, [f"You {done} this step{moment}, with the {button} button of your mail."]
    if by is None:
        who = "outside this server (the workflow's history says so)"
    else:
        how = " with a mailed link" if by.startswith("link:") else ""
        who = f"by {name_of(request, by, audit)}{how}"
    return "Already answered elsewhere", [f"This step was {done} {who}{moment}."]
