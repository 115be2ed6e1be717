"""One step's mails: what is due to whom, and what SMTP did with each, recorded at once.

A notice's ``recipients`` says, per address (case aside), how many mails SMTP accepted for it
(``n``), when its next one is due, and how many sends failed in a row (``tries``). Each outcome
is committed as soon as SMTP gives it, with the notice's lease renewed: a worker stopped or
killed mid-pass leaves at most the one send in flight unrecorded, and another worker (or the
same one, restarted) takes up the rest as soon as the short lease ends (at once after a clean
stop, which releases it). An address refused for good (5xx, or one SMTP can't carry) is tried
``PERMANENT_TRIES`` times, then given up and listed in the record's ``unreached`` field.
Each state also says ``since`` when its mail has been due (however many sends failed since):
the notice's earliest is what the heartbeat calls overdue. Every kind of mail
(``mail_kinds``: a step's, an ended execution's) goes this way.
"""

import smtplib

from stepfunction import records
from stepfunction.links import execution_known
from stepfunction.mails import signs_in
from stepfunction.notices import NEVER, key_of
from stepfunction.worker.mail_kinds import kind_of


# A claim lasts this long, renewed after every send (SMTP's timeouts are 10 s each).
LEASE_SECONDS = 45
# Sends refused for good (5xx) before an address is given up.
PERMANENT_TRIES = 3
UNREACHED = "unreached"


def states_of(notice, reviewers, now):
    """The notice's per-recipient states, with one for each reviewer it did not know."""
    states = {k: dict(v) for k, v in (notice.get("recipients") or {}).items()}
    legacy = "recipients" not in notice  # a notice of an earlier version: rounds, not states
    for address in reviewers:
        if key_of(address) not in states:
            n = notice.get("sent", 0) if legacy else 0
            n += 1 if legacy and address in notice.get("delivered", ()) else 0
            due = notice["due"] if legacy else now
            state = {"address": address, "n": n, "due": due, "since": due, "tries": 0}
            states[key_of(address)] = state
    return states


def next_due(states, reviewers):
    dues = [states[key_of(a)]["due"] for a in reviewers if key_of(a) in states]
    return min(dues, default=NEVER)


def due_since(states, reviewers):
    """Since when the notice's longest-waiting mail has been due (failed sends included)."""
    known = [states[key_of(a)] for a in reviewers if key_of(a) in states]
    return min((s.get("since", s["due"]) for s in known if s["due"] < NEVER), default=NEVER)


def scheduled(states, reviewers):
    """The notice's ``recipients``, ``due`` and ``since`` for these states."""
    return {
        "recipients": states,
        "due": next_due(states, reviewers),
        "since": due_since(states, reviewers),
    }


def claim(request, uri, now):
    """``(notice, record, [(address, mails before, signs in)], linked)`` due now, leased; or
    None. ``linked``: whether its links can answer it (not a task the answer would fetch);
    ``signs in``: whether the address may answer on the dashboard (``mails.signs_in``)."""
    with records.record_lock(request, uri):
        notice = records.get_notice(request, uri)
        if notice is None or notice["due"] > now or notice.get("lease", 0) > now:
            return None
        record = records.read_record(request, *records.parse_record_uri(uri))
        kind = kind_of(notice)
        reviewers = kind.addressees(record)
        states = states_of(notice, reviewers, now)
        due = [(a, states[key_of(a)]["n"]) for a in reviewers if states[key_of(a)]["due"] <= now]
        if not due:
            changes = {**scheduled(states, reviewers), "lease": 0}
            records.put_notice(request, uri, {**notice, **changes})
            return None
        notice = {**notice, "recipients": states, "lease": now + LEASE_SECONDS}
        records.put_notice(request, uri, notice)
        settings = request.registry.stepfunction_settings
        linked = kind.linked and execution_known(settings, record, records.get_task(request, uri))
        accounts = [f"account:{address}" for address, _ in due]
        principals = records.answering_principals(request, uri, accounts)
        due = [(address, n, signs_in(address, principals)) for address, n in due]
        return notice, record, due, linked


def record_outcome(request, settings, delays, uri, nonce, address, outcome, now):
    """Record what SMTP did with one mail (``outcome``: None when accepted, else
    ``(permanent, reason)``), and renew the lease; whether to go on with the step."""
    with records.record_lock(request, uri):
        notice = records.get_notice(request, uri)
        if notice is None or notice["nonce"] != nonce or notice.get("closed"):
            return False
        states = states_of(notice, [address], now)
        state = states[key_of(address)]
        if outcome is None:
            sent = state["n"] + 1
            reminds = kind_of(notice).reminds and settings.remind_every is not None
            again = reminds and sent <= settings.remind_max
            due = now + settings.remind_every if again else NEVER
            state.update(n=sent, due=due, since=due, tries=0)
        else:
            permanent, reason = outcome
            tries = state.get("tries", 0) + 1
            since = state.get("since", state["due"])  # the mail has waited since then
            state.update(tries=tries, due=now + delays[min(tries, len(delays)) - 1], since=since)
            if permanent and tries >= PERMANENT_TRIES:
                state.update(due=NEVER, unreached=reason)
                mark_unreached(request, uri, state["address"], reason)
        changes = {"recipients": states, "lease": now + LEASE_SECONDS}
        records.put_notice(request, uri, {**notice, **changes})
        return True


def release(request, uri, nonce, now):
    """End a pass over the step: when its next mail is due, and the lease let go."""
    with records.record_lock(request, uri):
        notice = records.get_notice(request, uri)
        if notice is None or notice["nonce"] != nonce or notice.get("closed"):
            return
        record = records.read_record(request, *records.parse_record_uri(uri))
        reviewers = kind_of(notice).addressees(record)
        states = states_of(notice, reviewers, now)
        records.put_notice(request, uri, {**notice, **scheduled(states, reviewers), "lease": 0})


def postpone(request, uri, delay, now):
    """A step whose mail can't be made: try it again later, alone (``errors`` in a row)."""
    with records.record_lock(request, uri):
        notice = records.get_notice(request, uri)
        if notice is not None and not notice.get("closed"):
            errors = notice.get("errors", 0) + 1
            changes = {"due": now + delay(errors), "lease": 0, "errors": errors}
            records.put_notice(request, uri, {**notice, **changes})


def mark_unreached(request, uri, address, reason):
    """List ``address`` in the record's ``unreached`` field (written by the plugin only)."""
    bucket_id, collection_id, record_id = records.parse_record_uri(uri)
    record = records.read_record(request, bucket_id, collection_id, record_id)
    if record is None:
        return
    unreached = [u for u in record.get(UNREACHED) or [] if isinstance(u, dict)]
    if any(key_of(str(u.get("address"))) == key_of(address) for u in unreached):
        return
    unreached.append({"address": address, "reason": reason})
    records.write_record(request, bucket_id, collection_id, record_id, {UNREACHED: unreached})


def outcome_of(error):
    """``(permanent, reason)`` of a failed send; the reason is short, without the message."""
    if isinstance(error, UnicodeError | smtplib.SMTPNotSupportedError):
        return True, "not an address SMTP can carry"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        code = codes[0] if codes else None
        return code is not None and 500 <= code < 600, f"refused by the mail server ({code})"
    code = getattr(error, "smtp_code", None)
    if isinstance(error, smtplib.SMTPSenderRefused):
        return False, f"sender refused by the mail server ({code})"
    if isinstance(code, int) and 500 <= code < 600:
        return True, f"refused by the mail server ({code})"
    return False, type(error).__name__
