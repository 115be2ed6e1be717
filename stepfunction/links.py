"""One-click links: signed, expiring, bound to one step, one recipient and one answer.

A link is ``<public_url>stepfunction/links/<token>``; the token is the link's fields, signed
with ``stepfunction.link_secret`` (itsdangerous: HMAC-SHA256, URL-safe). It carries no task
token and no secret, only what the server checks when it is used:

- ``b``, ``c``, ``r``: the step's bucket, collection and record;
- ``e``: the recipient, who must still be among the record's reviewers;
- ``a``: the answer, SUCCEED or FAIL;
- ``n``: the nonce of the step's notices: a record deleted and created again under the same
  id has a new one, and the old links stop working;
- ``x``: when the link expires (seconds since the epoch).

Used, revoked (answered, timed out, deleted) is told by the record itself: a link never
answers a step that is no longer UNANSWERED, nor one whose execution is not known for sure
(``execution_known``).
"""

import time
from typing import NamedTuple

from itsdangerous import BadSignature, URLSafeSerializer

from stepfunction.schema import ANSWERS


SALT = "stepfunction.links"
PATH = "/stepfunction/links/{token}"
MAX_TOKEN_CHARS = 4096


class Link(NamedTuple):
    bucket_id: str
    collection_id: str
    record_id: str
    recipient: str
    answer: str
    nonce: str
    expires: int


class InvalidLink(Exception):
    """Not a link this server signed (tampered, truncated, or signed with another secret)."""


class ExpiredLink(Exception):
    """A genuine link, past its expiry."""

    def __init__(self, link):
        super().__init__("expired")
        self.link = link


class Signer:
    def __init__(self, secret):
        self.serializer = URLSafeSerializer(secret, salt=SALT)

    def sign(self, link):
        fields = {
            "b": link.bucket_id,
            "c": link.collection_id,
            "r": link.record_id,
            "e": link.recipient,
            "a": link.answer,
            "n": link.nonce,
            "x": int(link.expires),
        }
        return self.serializer.dumps(fields)

    def read(self, token, now=None):
        """The link ``token`` stands for; raises InvalidLink or ExpiredLink."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise InvalidLink()
        try:
            fields = self.serializer.loads(token)
            link = Link(
                fields["b"],
                fields["c"],
                fields["r"],
                fields["e"],
                fields["a"],
                fields["n"],
                fields["x"],
            )
        except (BadSignature, KeyError, TypeError, ValueError):
            raise InvalidLink() from None
        if link.answer not in ANSWERS or not isinstance(link.expires, int):
            raise InvalidLink()
        if link.expires <= (time.time() if now is None else now):
            raise ExpiredLink(link)
        return link


def expiry(now, ttl, deadline=None):
    """When a link made ``now`` expires: after ``ttl`` seconds, never after the step's
    ``deadline`` (seconds since the epoch) when it is known."""
    expires = now + ttl
    if deadline is not None:
        expires = min(expires, deadline)
    return int(expires)


def execution_known(settings, record, task):
    """Whether answering ``record`` resumes the execution it names: not so when its task
    would be fetched with GetActivityTask (``fetch_activities``), or was (``fetched``).

    GetActivityTask answers a token and an input, not which execution they belong to, so a
    fetched task can't be checked against the record's ``executionArn``.
    """
    if task is not None:
        return not task.get("fetched")
    activity = record.get("activityArn")
    return not (isinstance(activity, str) and settings.may_fetch(activity))
