"""The body of a link page's POST, read strictly: the page's own form, or a reason to refuse.

The confirmation page posts ``application/x-www-form-urlencoded`` UTF-8 (no ``enctype``, a
``<meta charset="utf-8">`` page): ``csrf``, and ``reason`` on Reject's page, ``comment`` on
Approve's. Anything else (another media type or charset, multipart, a body too large, bytes
that are not ASCII, percent-escapes that are not UTF-8, a field given twice, too many fields)
is refused here, before anything reads it: its page is a 4xx, never a server error.
"""

from urllib.parse import parse_qsl

from stepfunction.schema import MAX_CAUSE_CHARS


FORM_TYPE = "application/x-www-form-urlencoded"
# A reason of MAX_CAUSE_CHARS characters of 4 UTF-8 bytes each, percent-encoded (12 bytes per
# character), with room to spare.
MAX_BYTES = 16 * MAX_CAUSE_CHARS
MAX_FIELDS = 10
FIELDS = ("csrf", "reason", "comment")
STORED = ("reason", "comment")  # what the vote's record keeps (the csrf is only compared)


class BadForm(Exception):
    """The body is not the page's form: ``status``, ``title`` and ``text`` of its page."""

    def __init__(self, status, title, text):
        super().__init__(title)
        self.page = (status, title, (text,))


def read_form(request):
    """``{name: value}`` of the page's fields that the body carries; raises BadForm."""
    length = request.content_length or 0
    if not length:
        return {}  # no body, no fields, whatever its type says
    charset = request.charset.lower()  # UTF-8 when the type names none
    if request.content_type != FORM_TYPE or charset not in ("utf-8", "utf8"):
        raise BadForm(415, "This is not the link's form", "Answer with the link's own page.")
    if length > MAX_BYTES:
        raise BadForm(413, "This form is too large", "Answer with the link's own page.")
    try:
        pairs = parse_qsl(
            request.body.decode("ascii"),  # Content-Length bytes, no more
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:  # UnicodeDecodeError included
        raise BadForm(400, "This form is malformed", "Answer with the link's own page.") from None
    form = {}
    for name, value in pairs:  # the page's form gives each field once
        if name in form:
            raise BadForm(400, "This form is malformed", "A field is repeated.")
        form[name] = value
    if any("\x00" in form.get(name, "") for name in STORED):  # PostgreSQL stores no NUL
        raise BadForm(400, "This form is malformed", "A field holds a NUL character.")
    return {name: form[name] for name in FIELDS if name in form}
