"""The pages of a mailed link, ``/v1/stepfunction/links/{token}``: scanner-safe answers.

Mail scanners and chat unfurlers open every link: a GET (or HEAD) renders a confirmation
page and changes nothing. Only the page's form answers, with a POST that must come from the
page itself: its hidden field matches a SameSite=Strict cookie the page set (a cross-site
form carries no such cookie), and a browser's ``Origin`` / ``Sec-Fetch-Site`` headers must
say it is this site. Every outcome is a page with its status code, never a JSON error.
"""

import functools
import hmac
import html
import logging
import re
import secrets
from urllib.parse import urlparse

from pyramid import httpexceptions
from pyramid.response import Response

from stepfunction import records
from stepfunction.link_form import BadForm, read_form
from stepfunction.links import PATH as LINK_PATH
from stepfunction.links import ExpiredLink, InvalidLink, execution_known
from stepfunction.notices import (
    dashboard_url,
    is_reviewer,
    subject_of,
    summary_of,
    workflow_of,
)
from stepfunction.schema import (
    CLOSED,
    DEFAULT_CAUSE,
    DEFAULT_ERROR,
    DEFAULT_OUTPUT,
    FAIL,
    MAX_CAUSE_CHARS,
    SUCCEED,
    TIMED_OUT,
    UNANSWERED,
)
from stepfunction.views import RETRY_AFTER_SECONDS, Answer, Answered, closed_reason


logger = logging.getLogger(__name__)

CSRF_COOKIE = "stepfunction_link"
CSRF_VALUE = re.compile(r"[A-Za-z0-9_-]{32}")
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
VERBS = {SUCCEED: ("Approve", "Approved"), FAIL: ("Reject", "Rejected")}


class Problem(Exception):
    """The link can't be used: render this page."""

    def __init__(self, status, title, *paragraphs):
        super().__init__(title)
        self.page = (status, title, paragraphs)


def render(request, status, title, paragraphs=(), body_html="", headers=None):
    """A page: escaped text paragraphs, then trusted ``body_html`` built here."""
    text = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    css = request.route_path("stepfunction_dashboard", subpath=("links.css",))
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{html.escape(title)}</title>"
        f'<link rel="stylesheet" href="{html.escape(css)}"></head>'
        f"<body><main><h1>{html.escape(title)}</h1>{text}{body_html}</main></body></html>\n"
    )
    response = Response(page, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(
        {
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            # The link's URL is its secret: never sent to another site. (With no-referrer,
            # browsers post the form with ``Origin: null``.)
            "Referrer-Policy": "same-origin",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "X-Robots-Tag": "noindex, nofollow",
            **(headers or {}),
        }
    )
    return response


def step_html(record):
    """The step, as the confirmation page shows it (all of it escaped)."""
    rows = [("Step", subject_of(record)), *workflow_of(record)]
    parts = ["<dl>"]
    for label, value in rows:
        parts.append(f"<dt>{html.escape(label)}</dt><dd>{html.escape(value)}</dd>")
    parts.append("</dl>")
    summary = summary_of(record)
    if summary:
        parts.append(f"<h2>Input</h2><pre>{html.escape(summary)}</pre>")
    return "".join(parts)


def answered_text(record):
    status = record.get("status")
    if status == TIMED_OUT:
        return "This step timed out: the workflow no longer waits for an answer."
    audit = record.get("answer") if isinstance(record.get("answer"), dict) else {}
    by = audit.get("by") or "someone"
    at = audit.get("at") or "an earlier time"
    return f"This step was already answered {status} by {by} at {at}."


def read_link(request):
    """``(link, record, task)`` of a usable link; raises Problem otherwise."""
    registry = request.registry
    public_url = registry.stepfunction_settings.public_url
    try:
        link = registry.stepfunction_signer.read(request.matchdict["token"])
    except InvalidLink:
        raise Problem(404, "This link is not valid", "Check that it was copied whole.") from None
    except ExpiredLink as e:
        ids = (e.link.bucket_id, e.link.collection_id, e.link.record_id)
        dashboard = dashboard_url(public_url, *ids)
        raise Problem(
            410, "This link has expired", f"The step may still be answered on {dashboard}"
        ) from None
    ids = (link.bucket_id, link.collection_id, link.record_id)
    if not registry.stepfunction_settings.holds_steps(*ids[:2]):
        raise Problem(404, "This link is not valid", "It names no steps collection.")
    record, task = records.read_step(request, *ids)
    notice = records.get_notice(request, records.record_uri(*ids)) if record else None
    if record is None or notice is None or notice.get("nonce") != link.nonce:
        raise Problem(410, "This step no longer exists", "It was deleted by its author.")
    # First, before anything about the step (its status, who answered): a removed address
    # learns nothing more of it.
    if not is_reviewer(record, link.recipient):
        raise Problem(
            403,
            "This link no longer answers",
            f"{link.recipient} is no longer a reviewer of this step.",
        )
    if record.get("status") == CLOSED:
        raise Problem(410, "This step is closed", closed_reason(record))
    if record.get("status", UNANSWERED) != UNANSWERED:
        raise Problem(410, "This link was already used", answered_text(record))
    if not execution_known(registry.stepfunction_settings, record, task):
        raise Problem(
            409,
            "This step cannot be answered by a link",
            "Its task would be fetched from its activity, which hands out the task of any "
            "execution waiting on it, maybe not this step's. Answer it on "
            f"{dashboard_url(public_url, *ids)}",
        )
    return link, record, task


def link_view(view):
    """``view(request, link, record, task)`` for a usable link; a page saying why otherwise."""

    @functools.wraps(view)
    def wrapper(request):
        try:
            link, record, task = read_link(request)
        except Problem as problem:
            status, title, paragraphs = problem.page
            return render(request, status, title, paragraphs)
        return view(request, link, record, task)

    return wrapper


@link_view
def confirm_page(request, link, record, task):
    """GET or HEAD: what the link would do, and a button to do it. Changes nothing."""
    verb = VERBS[link.answer][0]
    # The cookie of an earlier opening is kept: a page open in another tab still answers.
    csrf = request.cookies.get(CSRF_COOKIE, "")
    if not CSRF_VALUE.fullmatch(csrf):
        csrf = secrets.token_urlsafe(24)
    reason = ""
    if link.answer == FAIL:
        reason = (
            '<label for="reason">Reason (optional, sent to the workflow)</label>'
            f'<textarea id="reason" name="reason" rows="4" maxlength="{MAX_CAUSE_CHARS}">'
            "</textarea>"
        )
    form = (
        f'<form method="post" action="{html.escape(request.path)}">{reason}'
        f'<input type="hidden" name="csrf" value="{csrf}">'
        f'<button type="submit" class="{link.answer.lower()}">{verb}</button></form>'
    )
    response = render(
        request,
        200,
        f"{verb} this step?",
        [f"You answer as {link.recipient}. Nothing is sent until you press {verb}."],
        step_html(record) + form,
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        path=request.path,
        httponly=True,
        samesite="Strict",
        secure=request.scheme == "https",
        max_age=3600,
    )
    return response


def same_site(request):
    """Whether the POST comes from this site's own page (as far as the browser tells)."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site not in (None, "same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None or (origin == "null" and fetch_site == "same-origin"):
        return True
    public = urlparse(request.registry.stepfunction_settings.public_url or "")
    allowed = {request.host_url, f"{public.scheme}://{public.netloc}"}
    return origin in allowed


@link_view
def answer_page(request, link, record, task):
    """POST from the confirmation page: the answer, as the link's recipient."""
    try:
        form = read_form(request)
    except BadForm as bad:
        return render(request, *bad.page)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    field = form.get("csrf", "")
    valid = CSRF_VALUE.fullmatch(cookie) and CSRF_VALUE.fullmatch(field)
    if not (same_site(request) and valid and hmac.compare_digest(cookie, field)):
        return render(
            request,
            403,
            "Please confirm from the link's page",
            ["This answer did not come from the link's own page. Open the link again."],
        )
    body = {
        "answer": link.answer,
        "output": DEFAULT_OUTPUT,
        "error": DEFAULT_ERROR,
        "cause": DEFAULT_CAUSE,
    }
    if link.answer == FAIL:
        reason = form.get("reason", "").strip()
        if len(reason) > MAX_CAUSE_CHARS:
            return render(
                request, 400, "This reason is too long", [f"At most {MAX_CAUSE_CHARS} characters."]
            )
        body["cause"] = reason or DEFAULT_CAUSE
    ids = (link.bucket_id, link.collection_id, link.record_id)
    answer = Answer(request, ids, body, f"link:{link.recipient}")
    try:
        result = answer(record, task)
    except Answered as answered:
        text = answered_text(answered.body["data"])
        return render(request, 409, "This link was already used", [text])
    except httpexceptions.HTTPException as e:
        request.tm.doom()  # as when the API raises it: nothing of this request is committed
        return outcome_page(request, e)
    except Exception:
        request.tm.doom()
        logger.exception("%s: answering by a link failed", records.record_uri(*ids))
        return render(request, 500, "This answer could not be sent", ["Please try again later."])
    if isinstance(result, httpexceptions.HTTPException):  # returned: its writes are committed
        return outcome_page(request, result)
    done = VERBS[link.answer][1]
    logger.info("%s answered %s by a link", records.record_uri(*ids), link.answer)
    return render(
        request,
        200,
        f"{done}. Thank you",
        [f"Your answer was sent to the workflow as {link.recipient}."],
        step_html(result["data"]),
    )


def outcome_page(request, error):
    """The page for an error response of the answer (Kinto's JSON message, as text)."""
    try:
        message = error.json["message"]
    except (ValueError, KeyError, TypeError):
        message = error.explanation
    status = error.code
    headers = {}
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        title = "Step Functions is unavailable: try again in a moment"
    elif status in (409, 410):
        title = "This step can no longer be answered"
    else:
        title = "This answer could not be sent"
    return render(request, status, title, [message], headers=headers)


def includeme(config):
    config.add_route("stepfunction_link", LINK_PATH)
    config.add_view(confirm_page, route_name="stepfunction_link", request_method="GET")
    config.add_view(answer_page, route_name="stepfunction_link", request_method="POST")
