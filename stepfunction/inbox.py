"""GET …/collections/{collection_id}/stepfunction/inbox: the steps waiting for the user.

A step waits for a user when it is unanswered (no ``status`` counts as unanswered) and the
user may write its record: through the record's own ACL, or as the step's author (``write``
on the collection or its bucket). The storage and permission backends do the filtering and
the paging, newest first: a page reads that page's records, not the collection.

    {"data": [record, …]}        at most ``_limit`` records (default 50)
    Next-Page: <the same URL with ``_token``>   when there may be more

``?id=<record id>`` narrows it to that record: whether the user may answer it now (the
dashboard's detail view asks so).

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

from stepfunction import records
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
        validator=colander.Length(max=200),
        description="Where the next page starts: as given by the Next-Page header",
    )
    id = colander.SchemaNode(
        colander.String(),
        missing=None,
        validator=colander.Function(records.RECORD_ID.fullmatch, "Invalid record id"),
        description="Only this record, if it is in the inbox",
    )


class InboxRequest(colander.MappingSchema):
    querystring = InboxQuerystring()


class _Records(colander.SequenceSchema):
    record = colander.SchemaNode(colander.Mapping(unknown="preserve"))


class _Page(colander.MappingSchema):
    data = _Records(description="Unanswered steps the user may answer, newest first")


class _PageHeaders(colander.MappingSchema):
    next_page = colander.SchemaNode(
        colander.String(), name="Next-Page", missing=colander.drop, description="Next page URL"
    )


class PageResponseSchema(colander.MappingSchema):
    body = _Page()
    header = _PageHeaders()


INBOX_RESPONSES = {
    "200": PageResponseSchema(description="A page of the user's inbox"),
    "400": ErrorResponseSchema(description="Invalid _limit, _token or id"),
    "401": ErrorResponseSchema(description="Anonymous"),
    "404": ErrorResponseSchema(description="Not a collection of steps"),
}


def encode_token(last_modified):
    return encode64(json.dumps({"last_modified": last_modified}))


def decode_token(request, token):
    """The ``last_modified`` a page starts below, from its ``_token``."""
    try:
        value = json.loads(decode64(token))["last_modified"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError
        if not 0 <= value <= MAX_TIMESTAMP:
            raise ValueError
        return value
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise_invalid(request, location="querystring", name="_token", description="Invalid token")


inbox = Service(
    name="stepfunction_inbox",
    description="The unanswered steps of a collection that the user may answer",
    path=records.collection_uri("{bucket_id}", "{collection_id}") + "/stepfunction/inbox",
    factory=InboxContext,
)


@inbox.get(
    permission=NO_PERMISSION_REQUIRED,
    schema=InboxRequest(),
    validators=(colander_validator,),
    response_schemas=INBOX_RESPONSES,
)
def get_inbox(request):
    if request.authenticated_userid is None:
        raise httpexceptions.HTTPForbidden()  # Kinto's answer to anonymous users: 401
    query = request.validated["querystring"]
    max_fetch = int(request.registry.settings.get("storage_max_fetch_size") or MAX_LIMIT)
    limit = min(query["_limit"], max_fetch - 1)
    before = decode_token(request, query["_token"]) if query["_token"] else None
    bucket_id, collection_id = request.context.ids

    writable = None  # every record of the collection: the user authored them
    if not records.is_author(request, bucket_id, collection_id):
        writable = records.writable_record_ids(request, bucket_id, collection_id)
    if query["id"] is not None:
        writable = {query["id"]} if writable is None else {query["id"]} & writable
    page = records.pending_records(
        request, bucket_id, collection_id, limit=limit + 1, before=before, ids=writable
    )
    if len(page) > limit:
        page = page[:limit]
        params = {"_limit": limit, "_token": encode_token(page[-1]["last_modified"])}
        request.response.headers["Next-Page"] = request.route_url(
            inbox.name, _query=params, **request.matchdict
        )
    # Kept out of records already: never served, whatever. A copy: the memory backend's
    # records are its own objects.
    page = [{**r, "taskToken": TOKEN_MASK} if "taskToken" in r else r for r in page]
    return {"data": page}
