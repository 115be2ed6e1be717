"""The steps of a collection, for the dashboard: paged, searched and sorted by the server.

GET …/collections/{collection_id}/stepfunction/inbox: the steps waiting for the user. A step
waits for a user when it is unanswered (no ``status`` counts as unanswered) and the user may
write its record: through the record's own ACL, or as the step's author (``write`` on the
collection or its bucket).

GET …/collections/{collection_id}/stepfunction/steps: every step the user may read.

    {"data": [record, …],            at most ``_limit`` records (default 50)
     "total": 12,                    how many match, on every page
     "steps": {id: {"reviewers": […], "answeredBy": "…", "mayAnswer": true, "problem": "…",
                    "names": {principal: name}}}}    names: of who voted or delegated
    Next-Page: <the same URL with ``_token``>   when there may be more

``steps`` tells, for each record of the page, who is asked (the names of the principals
that may write the record itself, its authors aside, shown as Kinto shows ACLs: to those who
may write the record; then the ``reviewer`` addresses), who
answered, whether the user may answer it now, and why nobody can (``problem``), in words:
people as names, never hashes (see ``people``).

``_sort``: ``-last_modified`` (newest first, the default), ``last_modified``, ``deadline``
(the most urgent first); ``q``: text in the subject (see ``listing``). ``?id=<record id>``
narrows it to that record (the dashboard's detail view asks so).

Anonymous requests get 401; a collection that holds no steps, 404 (as the answer endpoint).
"""

import binascii
import json

import colander
from kinto.core import Service
from kinto.core.cornice.validators import colander_validator
from kinto.core.errors import ERRORS, http_error, raise_invalid
from kinto.core.resource.schema import ErrorResponseSchema
from kinto.core.utils import decode64, encode64
from pyramid import httpexceptions
from pyramid.security import NO_PERMISSION_REQUIRED

from stepfunction import listing, people, records
from stepfunction.schema import TOKEN_MASK


DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_TIMESTAMP = 2**63 - 1  # PostgreSQL's bigint


class InboxContext:
    """The inbox of a collection configured for steps; any other collection has none."""

    def __init__(self, request):
        match = request.matchdict
        self.ids = (match["bucket_id"], match["collection_id"])
        if not request.registry.stepfunction_settings.holds_steps(*self.ids):
            raise http_error(
                httpexceptions.HTTPNotFound(),
                errno=ERRORS.MISSING_RESOURCE,
                message="This collection holds no manual steps (see stepfunction.collections).",
            )


class InboxQuerystring(colander.MappingSchema):
    _limit = colander.SchemaNode(
        colander.Integer(),
        missing=DEFAULT_LIMIT,
        validator=colander.Range(min=1, max=MAX_LIMIT),
        description=f"Records per page, from 1 to {MAX_LIMIT}",
    )
    _token = colander.SchemaNode(
        colander.String(),
        missing=None,
        validator=colander.Length(max=400),
        description="Where the next page starts: as given by the Next-Page header",
    )
    _sort = colander.SchemaNode(
        colander.String(),
        missing=listing.NEWEST,
        validator=colander.OneOf(listing.SORTS),
        description="-last_modified (newest first), last_modified, or deadline (most urgent)",
    )
    q = colander.SchemaNode(
        colander.String(),
        missing="",
        validator=colander.Length(max=listing.MAX_QUERY),
        description="Only the steps whose subject holds this text (any case)",
    )
    id = colander.SchemaNode(
        colander.String(),
        missing=None,
        validator=colander.Function(records.RECORD_ID.fullmatch, "Invalid record id"),
        description="Only this record, if it is in the list",
    )


class InboxRequest(colander.MappingSchema):
    querystring = InboxQuerystring()


class _Records(colander.SequenceSchema):
    record = colander.SchemaNode(colander.Mapping(unknown="preserve"))


class _Page(colander.MappingSchema):
    data = _Records(description="The page's steps")
    total = colander.SchemaNode(colander.Integer(), description="How many steps match in all")
    steps = colander.SchemaNode(
        colander.Mapping(unknown="preserve"),
        description="By record id: reviewers, answeredBy, names (of voters), mayAnswer, problem",
    )


class _PageHeaders(colander.MappingSchema):
    next_page = colander.SchemaNode(
        colander.String(), name="Next-Page", missing=colander.drop, description="Next page URL"
    )


class PageResponseSchema(colander.MappingSchema):
    body = _Page()
    header = _PageHeaders()


INBOX_RESPONSES = {
    "200": PageResponseSchema(description="A page of steps"),
    "400": ErrorResponseSchema(description="Invalid _limit, _token, _sort, q or id"),
    "401": ErrorResponseSchema(description="Anonymous"),
    "404": ErrorResponseSchema(description="Not a collection of steps"),
}


def encode_token(value):
    return encode64(json.dumps(value))


def _invalid_token(request):
    raise_invalid(request, location="querystring", name="_token", description="Invalid token")


def decode_token(request, token, sort):
    """Where a page starts, from its ``_token``: below a ``last_modified`` (newest first), or
    after a sort key (the other sorts)."""
    try:
        value = json.loads(decode64(token))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        _invalid_token(request)
    if not isinstance(value, dict):
        _invalid_token(request)
    if sort != listing.NEWEST:
        if value.get("sort") != sort or not listing.valid_key(value.get("after"), sort):
            _invalid_token(request)
        return value["after"]
    last = value.get("last_modified")
    if isinstance(last, bool) or not isinstance(last, int) or not 0 <= last <= MAX_TIMESTAMP:
        _invalid_token(request)
    return last


def _service(name, path, description):
    return Service(
        name=name,
        description=description,
        path=records.collection_uri("{bucket_id}", "{collection_id}") + "/stepfunction/" + path,
        factory=InboxContext,
    )


inbox = _service(
    "stepfunction_inbox", "inbox", "The unanswered steps of a collection the user may answer"
)
all_steps = _service("stepfunction_steps", "steps", "The steps of a collection the user may read")


def _signed_in(request):
    if request.authenticated_userid is None:
        raise httpexceptions.HTTPForbidden()  # Kinto's answer to anonymous users: 401
    people.remember(request)


@inbox.get(
    permission=NO_PERMISSION_REQUIRED,
    schema=InboxRequest(),
    validators=(colander_validator,),
    response_schemas=INBOX_RESPONSES,
)
def get_inbox(request):
    _signed_in(request)
    bucket_id, collection_id = request.context.ids
    writable = None  # every record of the collection: the user authored them
    if not records.is_author(request, bucket_id, collection_id):
        writable = records.writable_record_ids(request, bucket_id, collection_id)
    return _page(request, inbox, pending=True, ids=writable, writable=writable)


@all_steps.get(
    permission=NO_PERMISSION_REQUIRED,
    schema=InboxRequest(),
    validators=(colander_validator,),
    response_schemas=INBOX_RESPONSES,
)
def get_steps(request):
    _signed_in(request)
    bucket_id, collection_id = request.context.ids
    readable = None
    if not records.may_read_all(request, bucket_id, collection_id):
        readable = records.readable_record_ids(request, bucket_id, collection_id)
    writable = None
    if not records.is_author(request, bucket_id, collection_id):
        writable = records.writable_record_ids(request, bucket_id, collection_id)
    return _page(request, all_steps, pending=False, ids=readable, writable=writable)


def _page(request, service, pending, ids, writable):
    """A page of the collection's records among ``ids`` (None: all of them), unanswered ones
    only if ``pending``, with what the dashboard shows of each; ``writable``: the ids the user
    may write (None: all)."""
    query = request.validated["querystring"]
    max_fetch = int(request.registry.settings.get("storage_max_fetch_size") or MAX_LIMIT)
    limit = min(query["_limit"], max_fetch - 1)
    sort, text = query["_sort"], query["q"].strip()
    start = decode_token(request, query["_token"], sort) if query["_token"] else None
    if query["id"] is not None:
        ids = {query["id"]} if ids is None else {query["id"]} & ids
    bucket_id, collection_id = request.context.ids

    if sort == listing.NEWEST and not text:  # the storage sorts and pages
        page, total = records.steps(
            request, bucket_id, collection_id, limit + 1, pending, before=start, ids=ids
        )
        more = len(page) > limit
        page = page[:limit]
        token = {"last_modified": page[-1]["last_modified"]} if page else None
    else:  # sorted and searched here, among at most storage_max_fetch_size records
        found, _ = records.steps(request, bucket_id, collection_id, max_fetch, pending, ids=ids)
        page, more, total = listing.page_after(found, sort, text, start, limit)
        token = {"sort": sort, "after": listing.sort_key(page[-1], sort)} if page else None
    if more:
        params = {k: v for k, v in request.GET.items() if k not in ("_token", "_limit")}
        params.update(_limit=limit, _token=encode_token(token))
        request.response.headers["Next-Page"] = request.route_url(
            service.name, _query=params, **request.matchdict
        )
    steps = listing.describe(request, page, writable)
    # Kept out of records already: never served, whatever. A copy: the memory backend's
    # records are its own objects.
    page = [{**r, "taskToken": TOKEN_MASK} if "taskToken" in r else r for r in page]
    return {"data": page, "total": total, "steps": steps}
