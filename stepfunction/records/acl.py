"""Who may do what with records: queries on Kinto's permission backend."""

from stepfunction.records.uris import RECORD_ID, collection_uri, parse_record_uri, record_uri


def is_author(request, bucket_id, collection_id):
    """Whether the request's user may write the whole collection (or its bucket)."""
    principals = request.prefixed_principals
    bound = {
        (f"/buckets/{bucket_id}", "write"),
        (collection_uri(bucket_id, collection_id), "write"),
    }
    return request.registry.permission.check_permission(principals, bound)


def answering_principals(request, uri, candidates=()):
    """The principals that may write the record ``uri`` (its own ACL, its collection's or its
    bucket's), and those of ``candidates`` (user principals) that may through a group."""
    bucket_id, collection_id, _ = parse_record_uri(uri)
    bound = [
        (uri, "write"),
        (collection_uri(bucket_id, collection_id), "write"),
        (f"/buckets/{bucket_id}", "write"),
    ]
    permission = request.registry.permission
    principals = set(permission.get_authorized_principals(bound))
    for candidate in candidates:
        if set(permission.get_user_principals(candidate)) & principals:
            principals.add(candidate)
    return principals


def writable_record_ids(request, bucket_id, collection_id):
    """Ids of the collection's records whose own ACL lets the request's user write them.

    One query on the permission backend: it returns ids, not records.
    """
    prefix = record_uri(bucket_id, collection_id, "")
    accessible = request.registry.permission.get_accessible_objects(
        request.prefixed_principals, [(prefix + "*", "write")], with_children=False
    )
    ids = set()
    for uri in accessible:
        # The pattern is a LIKE on PostgreSQL, where ``_`` in an id matches any character:
        # only this very collection's records count.
        record_id = uri[len(prefix) :] if uri.startswith(prefix) else ""
        if RECORD_ID.fullmatch(record_id):
            ids.add(record_id)
    return ids


def may_read_all(request, bucket_id, collection_id):
    """Whether the request's user may read every record of the collection."""
    uris = (f"/buckets/{bucket_id}", collection_uri(bucket_id, collection_id))
    bound = {(uri, perm) for uri in uris for perm in ("read", "write")}
    return request.registry.permission.check_permission(request.prefixed_principals, bound)


def readable_record_ids(request, bucket_id, collection_id):
    """Ids of the records whose own ACL lets the request's user read them (read or write)."""
    prefix = record_uri(bucket_id, collection_id, "")
    accessible = request.registry.permission.get_accessible_objects(
        request.prefixed_principals,
        [(prefix + "*", "read"), (prefix + "*", "write")],
        with_children=False,
    )
    ids = {uri[len(prefix) :] for uri in accessible if uri.startswith(prefix)}
    return {record_id for record_id in ids if RECORD_ID.fullmatch(record_id)}


def record_writers(request, bucket_id, collection_id, record_ids):
    """``{record id: principals with write on the record itself}``, in one query."""
    uris = [record_uri(bucket_id, collection_id, i) for i in record_ids]
    acls = request.registry.permission.get_objects_permissions(uris)  # memory: all or none
    return {i: set(acl.get("write", ())) for i, acl in zip(record_ids, acls, strict=True)}


def author_principals(request, bucket_id, collection_id):
    """Principals with write on the collection or its bucket: the steps' authors."""
    permission = request.registry.permission
    uris = (f"/buckets/{bucket_id}", collection_uri(bucket_id, collection_id))
    return set().union(*(permission.get_object_permission_principals(u, "write") for u in uris))
