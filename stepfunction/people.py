"""People as the dashboard shows them: names and addresses, never hashes.

A principal is shown as what its identity provides:

- oneself: ``you``;
- Kinto accounts (``account:ada``): the account's id, ``ada``;
- a mailed link (``link:ada@example.com``): the address;
- groups (``/buckets/b/groups/reviewers``): ``group reviewers``; ``system.Authenticated``:
  ``any signed-in user``; ``system.Everyone``: ``anyone``;
- Basic auth (``basicauth:<hash>``) and OpenID Connect (``<policy>:<sub>``): the id is a hash or
  an opaque subject, so the plugin records a readable name when the user signs in to the
  dashboard or answers a step (:func:`remember`): the user name typed for Basic auth (Kinto
  hashes it with the password: it can't be read back), the ``name`` or ``email`` of OpenID's
  userinfo. Until then: ``a Basic auth user`` / ``a <policy> user``.

A Basic auth user name is what its user typed: Kinto's Basic auth lets anyone pick any name, so
two principals may share one (each is still only what its own credentials sign in as).
"""

import base64
import binascii
import logging

from stepfunction import records, transactions


logger = logging.getLogger(__name__)

MAX_NAME = 100
GROUP = "/buckets/"
FIXED = {"system.Everyone": "anyone", "system.Authenticated": "any signed-in user"}
KINDS = {"basicauth": "Basic auth"}


def own_name(request):
    """The readable name of the request's user, from its credentials or OpenID profile."""
    userid = request.prefixed_userid
    if not userid:
        return None
    kind, _, rest = userid.partition(":")
    if kind == "basicauth":
        return _basic_user(request)
    if kind in ("account", "link"):
        return rest
    profile = request.bound_data.get("user_profile") or {}
    for field in ("name", "email", "preferred_username"):
        value = profile.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _basic_user(request):
    method, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if method.lower() != "basic":
        return None
    try:
        user = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").split(":", 1)[0]
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user.strip() or None


def remember(request):
    """Record the user's readable name, when it is new or changed (one read otherwise)."""
    userid = request.prefixed_userid
    name = own_name(request)
    if not userid or not name or userid.partition(":")[0] in ("account", "link"):
        return  # nothing to record: these ids are names already
    name = "".join(c for c in name if c.isprintable())[:MAX_NAME]
    try:
        if records.get_names(request, {userid}).get(userid) != name:
            # Committed at once, in a transaction of its own: an answer's request may stay
            # open for a minute (GetActivityTask), and must not hold this row meanwhile.
            transactions.commit_aside(
                request.registry, lambda aside: records.put_name(aside, userid, name)
            )
    except Exception:  # a name is a nicety: never fail the request for it (e.g. read-only)
        logger.warning("Could not record the name of %s", userid, exc_info=True)


def names(request, principals):
    """``{principal: how to show it}`` for ``principals``."""
    principals = {p for p in principals if isinstance(p, str)}
    recorded = records.get_names(request, principals)
    return {p: show(p, request.prefixed_userid, recorded.get(p)) for p in principals}


def show(principal, me=None, recorded=None):
    """How to show ``principal`` to the user ``me``, given the name recorded for it."""
    if principal == me:
        return "you"
    if principal in FIXED:
        return FIXED[principal]
    if principal.startswith(GROUP) and "/groups/" in principal:
        return "group " + principal.rsplit("/", 1)[-1]
    kind, _, rest = principal.partition(":")
    if kind in ("account", "link") and rest:
        return rest
    if recorded:
        return recorded
    return f"a {KINDS.get(kind, kind)} user"
