"""Where a record lives: its URI, its collection's, and what a record id may be."""

import re


RECORD_PATH = "/buckets/{bucket_id}/collections/{collection_id}/records/{id}"
RECORD_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")  # Kinto's record ids


def record_uri(bucket_id, collection_id, record_id):
    return RECORD_PATH.format(bucket_id=bucket_id, collection_id=collection_id, id=record_id)


def collection_uri(bucket_id, collection_id):
    return f"/buckets/{bucket_id}/collections/{collection_id}"


def parse_record_uri(uri):
    """``(bucket_id, collection_id, record_id)`` of a record URI."""
    parts = uri.split("/")
    return parts[2], parts[4], parts[6]
