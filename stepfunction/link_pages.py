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
import time
from urllib.parse import urlparse

from pyramid import httpexceptions
from pyramid.response import Response

from stepfunction import records, when
from stepfunction.answer import Answered
from stepfunction.decisions import AlreadyVoted, decide, progress_text
from stepfunction.errors import RETRY_AFTER_SECONDS, closed_reason
from stepfunction.link_form import BadForm, read_form
from stepfunction.link_text import answered, step_html
from stepfunction.links import PATH as LINK_PATH
from stepfunction.links import ExpiredLink, InvalidLink, execution_known
from stepfunction.notices import dashboard_url, is_reviewer
from stepfunction.schema import (
    CLOSED,
    DEFAULT_CAUSE,
    DEFAULT_ERROR,
    DEFAULT_OUTPUT,
    FAIL,
    MAX_CAUSE_CHARS,
    MAX_COMMENT_CHARS,
    SUCCEED,
    UNANSWERED,
)


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

    def __init__(self, status, title, *paragraphs, body_html=""):
        super().__init__(title)
        self.page = (status, title, paragraphs, body_html)


def dashboard_html(url):
    return f'<p><a href="{html.escape(url)}">Open the step on the dashboard</a></p>'


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
            410,
            "This link has expired",
            f"It expired {when.both(e.link.expires, time.time())}.",
            "The step may still wait for an answer: ask its author for a new link, or, if you "
            "can sign in, answer it on the dashboard.",
            body_html=dashboard_html(dashboard),
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
        title, *paragraphs = answered_page(request, record, link)
        raise Problem(410, title, *paragraphs, body_html=step_html(record, time.time()))
    if not execution_known(registry.stepfunction_settings, record, task):
        raise Problem(
            409,
            "This step cannot be answered by a link",
            "Its task would be fetched from its activity, which hands out the task of any "
            "execution waiting on it, maybe not this step's. A reviewer who can sign in "
            "answers it on the dashboard.",
            body_html=dashboard_html(dashboard_url(public_url, *ids)),
        )
    return link, record, task


def answered_page(request, record, link):
    """``(title, *paragraphs)`` of a step that no longer waits."""
    title, paragraphs = answered(request, record, link, time.time())
    return (title, *paragraphs)


def other_answer_url(request, link):
    """The confirmation page of the link's other answer (Approve ⇄ Reject)."""
    other = link._replace(answer=FAIL if link.answer == SUCCEED else SUCCEED)
    token = request.registry.stepfunction_signer.sign(other)
    return request.route_path("stepfunction_link", token=token)


def link_view(view):
    """``view(request, link, record, task)`` for a usable link; a page saying why otherwise."""

    @functools.wraps(view)
    def wrapper(request):
        try:
            link, record, task = read_link(request)
        except Problem as problem:
            return render(request, *problem.page)
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
    else:  # a comment, kept with the approval (and in the output, when it resumes the step)
        reason = (
            '<label for="comment">Comment (optional)</label>'
            f'<textarea id="comment" name="comment" rows="3" maxlength="{MAX_COMMENT_CHARS}">'
            "</textarea>"
        )
    other = VERBS[FAIL if link.answer == SUCCEED else SUCCEED][0]
    form = (
        f'<form method="post" action="{html.escape(request.path)}">{reason}'
        f'<input type="hidden" name="csrf" value="{csrf}">'
        f'<div class="actions"><button type="submit" class="{link.answer.lower()}">{verb}'
        f'</button><a class="switch" href="{html.escape(other_answer_url(request, link))}">'
        f"{other} instead</a></div></form>"
    )
    response = render(
        request,
        200,
        f"{verb} this step?",
        [f"You answer as {link.recipient}. Nothing is sent until you press {verb}."]
        + ([f"{progress_text(record)}."] if progress_text(record) else []),
        step_html(record, time.time(), link.expires) + form,
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
            ["This answer did not come from the link's own page: nothing was sent."],
            f'<p><a href="{html.escape(request.path)}">Open the link\'s page again</a></p>',
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
        if reason:
            body["comment"] = reason[:MAX_COMMENT_CHARS]
    else:
        comment = form.get("comment", "").strip()
        if len(comment) > MAX_COMMENT_CHARS:
            text = [f"At most {MAX_COMMENT_CHARS} characters."]
            return render(request, 400, "This comment is too long", text)
        if comment:
            body["comment"] = comment
    ids = (link.bucket_id, link.collection_id, link.record_id)
    try:  # one vote, as the link's recipient (``decisions``)
        result = decide(request, ids, body, f"link:{link.recipient}", record, task)
    except AlreadyVoted as voted:
        return render(
            request,
            200,
            "Your approval was already recorded",
            [progress_text(voted.body["data"]) or "Nothing was sent again."],
            step_html(voted.body["data"], time.time()),
        )
    except Answered as done:
        title, *paragraphs = answered_page(request, done.body["data"], link)
        return render(request, 409, title, paragraphs, step_html(done.body["data"], time.time()))
    except httpexceptions.HTTPException as e:
        request.tm.doom()  # as when the API raises it: nothing of this request is committed
        return outcome_page(request, e)
    except Exception:
        request.tm.doom()
        logger.exception("%s: answering by a link failed", records.record_uri(*ids))
        return render(request, 500, "This answer could not be sent", ["Please try again later."])
    if isinstance(result, httpexceptions.HTTPException):  # returned: its writes are committed
        return outcome_page(request, result)
    if result["data"].get("status", UNANSWERED) == UNANSWERED:  # a vote below the quorum
        logger.info("%s: approval recorded by a link", records.record_uri(*ids))
        text = [
            f"Your approval was recorded as {link.recipient}: {progress_text(result['data'])}."
        ]
        return render(
            request,
            202,
            "Approval recorded. Thank you",
            text,
            step_html(result["data"], time.time()),
        )
    done = VERBS[link.answer][1]
    logger.info("%s answered %s by a link", records.record_uri(*ids), link.answer)
    return render(
        request,
        200,
        f"{done}. Thank you",
        [f"Your answer was sent to the workflow as {link.recipient}."],
        step_html(result["data"], time.time()),
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
