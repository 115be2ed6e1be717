"""POST .../records/{id}/stepfunction: the endpoint where a reviewer answers a step.

The answer itself is ``answer.Answer``; with a quorum, one vote of several (``decisions``).
"""

from kinto.core import Service
from kinto.core.authorization import DYNAMIC
from kinto.core.cornice.validators import colander_body_validator

from stepfunction import people, records
from stepfunction.answer import Answered
from stepfunction.bodies import json_only
from stepfunction.contexts import StepContext
from stepfunction.decisions import decide  # one vote of several (it builds on Answer)
from stepfunction.schema import ANSWER_RESPONSES, AnswerSchema


stepfunction = Service(
    name="stepfunction",
    description="Answer the manual step a record describes",
    path=records.RECORD_PATH + "/stepfunction",
    factory=StepContext,
)


@stepfunction.post(
    schema=AnswerSchema(),
    permission=DYNAMIC,
    content_type="application/json",
    validators=(json_only, colander_body_validator),
    response_schemas=ANSWER_RESPONSES,
)
def answer_step(request):
    context = request.context
    people.remember(request)  # the dashboard names who answered (people.py)
    by, principals = request.prefixed_userid, request.prefixed_principals
    try:
        return decide(
            request,
            context.ids,
            request.validated,
            by,
            context.current_object,
            context.task,
            principals,
        )
    except Answered as answered:
        return answered.body
