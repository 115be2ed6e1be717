"""The reviewers' dashboard, served by Kinto itself at ``/v1/stepfunction/dashboard/``.

The original project shipped its dashboard as a separate Elm application, deployed on its own
origin. This one is four static files (``stepfunction/static/``): HTML, a script, a stylesheet
and an icon, with no build step and nothing fetched from elsewhere. Served by the Kinto that runs
the plugin, it calls the API on its own origin, so it needs no CORS settings, and its
Content-Security-Policy can allow only that origin. It lists the records of a collection the
reviewer can read and answers them with the plugin's ``POST …/stepfunction`` endpoint.
"""

from pyramid.httpexceptions import HTTPTemporaryRedirect
from pyramid.static import static_view


PATH = "/stepfunction/dashboard"

# Only this origin's files and API; no inline script or style, no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)

assets = static_view("stepfunction:static", use_subpath=True, cache_max_age=300)


HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # For browsers that predate CSP's frame-ancestors.
    "X-Frame-Options": "DENY",
}


def dashboard_view(request):
    """The page (``index.html`` for the bare path) and its assets, with their CSP."""
    response = assets(request.context, request)
    response.headers.update(HEADERS)
    return response


class RelativeRedirect(HTTPTemporaryRedirect):
    """A redirect whose ``Location`` is sent as given: WebOb makes a relative one absolute
    with the request's ``Host`` header, which a client or a proxy chooses."""

    def _abs_headerlist(self, environ):
        return list(self.headerlist)


def dashboard_redirect_view(request):
    """``…/dashboard`` to ``…/dashboard/``: the page's assets are relative to the slash.

    ``dashboard/`` is resolved against ``…/stepfunction/dashboard`` by the browser, whatever
    host and prefix it reached the server by."""
    query = f"?{request.query_string}" if request.query_string else ""
    return RelativeRedirect(location="dashboard/" + query, headers=HEADERS)


def includeme(config):
    config.add_route("stepfunction_dashboard", PATH + "/*subpath")
    config.add_view(dashboard_view, route_name="stepfunction_dashboard")
    config.add_route("stepfunction_dashboard_redirect", PATH)
    config.add_view(dashboard_redirect_view, route_name="stepfunction_dashboard_redirect")
