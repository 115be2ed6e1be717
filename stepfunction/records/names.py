"""People's readable names, for the dashboard: private objects, one per principal."""

import hashlib

from kinto.core.storage import Filter
from kinto.core.utils import COMPARISON


PERSON = "stepfunction-person"  # private objects: a principal's readable name
PEOPLE = "/stepfunction/people"


def person_id(principal):
    return hashlib.sha256(principal.encode()).hexdigest()[:40]


def get_names(request, principals):
    """``{principal: name}`` of those whose name was recorded."""
    ids = sorted({person_id(p) for p in principals})
    if not ids:
        return {}
    found = request.registry.storage.list_all(
        resource_name=PERSON, parent_id=PEOPLE, filters=[Filter("id", ids, COMPARISON.IN)]
    )
    return {p["principal"]: p["name"] for p in found if p.get("principal") in principals}


def put_name(request, principal, name):
    request.registry.storage.update(
        resource_name=PERSON,
        parent_id=PEOPLE,
        object_id=person_id(principal),
        obj={"principal": principal, "name": name},
    )
