"""Route factories of the plugin's endpoints that write one record: Kinto checks ``write``
on the record before the view runs."""

from kinto.authorization import RouteFactory
from kinto.core.errors import ERRORS
from pyramid import httpexceptions

from stepfunction import records
from stepfunction.errors import error


class RecordContext(RouteFactory):
    """A plugin endpoint that writes one record of a collection the settings name.

    ``write`` on the record is required, checked by Kinto before the view: nothing reaches
    AWS without it. As for any write on a missing object, Kinto then asks for ``read`` on its
    parent, so a missing record answers 404 exactly when a GET of it would. Subclasses say
    which collections (``holds``) and what to say of the others (``elsewhere``).
    """

    elsewhere = "This collection is not one of the plugin's."

    def holds(self, settings, bucket_id, collection_id):
        raise NotImplementedError

    def __init__(self, request):
        super().__init__(request)
        match = request.matchdict
        ids = (match["bucket_id"], match["collection_id"], match["id"])
        if not self.holds(request.registry.stepfunction_settings, *ids[:2]):
            raise error(httpexceptions.HTTPNotFound, ERRORS.MISSING_RESOURCE, self.elsewhere)
        if not records.RECORD_ID.fullmatch(ids[2]):
            raise error(
                httpexceptions.HTTPBadRequest,
                ERRORS.INVALID_PARAMETERS,
                "Invalid record id",
                [{"location": "path", "name": "id", "description": "Invalid record id"}],
            )
        self.ids = ids
        self.resource_name = "record"
        self.required_permission = "write"
        self.permission_object_id = records.record_uri(*ids)


class StepContext(RecordContext):
    """Answering a step is writing its record, in a collection configured for steps."""

    elsewhere = "This collection holds no manual steps (see stepfunction.collections)."

    def holds(self, settings, bucket_id, collection_id):
        return settings.holds_steps(bucket_id, collection_id)

    def __init__(self, request):
        super().__init__(request)
        # The record and its task in one read: the task is only used once Kinto allowed the
        # write (a ``write`` on the record, checked before the view).
        self.current_object, self.task = records.read_step(request, *self.ids)
