"""An answer to a step whose task token was never received fetches a task of the record's
activity (GetActivityTask), committed to the record before it is used."""

import logging
import threading

from stepfunction import records, transactions
from stepfunction.client import AwsError, NotStepFunctions, UnknownActivity, fingerprint
from stepfunction.errors import bad_record, conflict, not_step_functions, unavailable
from stepfunction.schema import TOKEN_MASK, UNANSWERED


logger = logging.getLogger(__name__)

WORKER_NAME = "kinto-stepfunction"
# Answers that may wait on GetActivityTask's 60 s long poll at once, per process: the other
# web threads stay free. The worker has no such limit.
FETCH_SLOTS = threading.BoundedSemaphore(2)
# A claim to fetch a record's task outlives the long poll (60 s on AWS) only after a crash.
CLAIM_SECONDS = 90


class TaskFetch:
    """The task of one record's activity, for an answer: ``TaskFetch(request, ids)(step, region)``
    returns its token."""

    def __init__(self, request, ids):
        self.request = request
        self.ids = ids
        self.uri = records.record_uri(*ids)
        self.client = request.registry.stepfunction_client
        self.settings = request.registry.stepfunction_settings

    def __call__(self, step, region):
        """A task of the record's activity, committed to the record before it is used.

        One request per record fetches (a claim committed first, across processes): two
        concurrent answers never take two tasks for one record.
        """
        activity = step.get("activityArn")
        if not activity:
            raise bad_record({"taskToken": "no task token is stored for this record"})
        if activity in self.settings.activities:
            raise conflict("This step's task was not yet received from Step Functions.")
        if not self.settings.may_fetch(activity):
            problem = "answers don't fetch tasks of this activity (see fetch_activities)"
            raise bad_record({"activityArn": problem})
        if not FETCH_SLOTS.acquire(blocking=False):
            raise unavailable("Other answers are already waiting for tasks; try again later.")
        try:
            return self.fetch_claimed(activity, region)
        finally:
            FETCH_SLOTS.release()

    def fetch_claimed(self, activity, region):
        registry = self.request.registry
        claimed = transactions.commit_aside(
            registry, lambda r: records.claim_task(r, self.uri, CLAIM_SECONDS)
        )
        if claimed is False:
            raise unavailable("Another answer is fetching this step's task; try again.")
        if claimed is not True:
            return claimed["token"]  # stored meanwhile by another answer
        try:
            task = self.client.get_activity_task(activity, WORKER_NAME)
        except AwsError as e:
            transactions.commit_aside(registry, lambda r: records.drop_task(r, self.uri))
            if isinstance(e, NotStepFunctions):
                raise not_step_functions(self.uri, e) from None
            if isinstance(e, UnknownActivity):
                problem = f"unknown activity {activity} ({e.code})"
                raise bad_record({"activityArn": problem}) from None
            logger.warning("%s: GetActivityTask on %s failed: %s", self.uri, activity, e)
            raise unavailable(f"Step Functions is unavailable ({e.code}).") from None
        if task is None:
            transactions.commit_aside(registry, lambda r: records.drop_task(r, self.uri))
            raise conflict(f"No execution is waiting on activity {activity}.")
        logger.info("%s: received %s of %s", self.uri, fingerprint(task.token), activity)

        # ``fetched``: GetActivityTask does not say whose task this is: no link answers it.
        def store(request):
            records.put_task(request, self.uri, task.token, region=region, fetched=True)
            changes = {"taskToken": TOKEN_MASK, "status": UNANSWERED}
            records.write_record(request, *self.ids, changes)

        try:  # durable before anything else can fail: Step Functions won't hand it out again.
            transactions.commit_aside(registry, store)
        except Exception:
            logger.exception("%s: storing %s failed", self.uri, fingerprint(task.token))
            transactions.commit_aside(
                registry,
                lambda r: records.put_task(r, self.uri, task.token, region=region, fetched=True),
            )
        return task.token
