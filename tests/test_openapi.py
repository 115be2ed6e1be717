"""Kinto's OpenAPI document documents the endpoint, and schemathesis finds no 5xx on it."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN, REVIEWER, post_step


ANSWER_PATH = "/buckets/{bucket_id}/collections/{collection_id}/records/{id}/stepfunction"
IDLE_ACTIVITY = "arn:aws:states:us-west-2:123456789012:activity:Idle"


def test_api_document_describes_the_answer(app):
    document = app.get("/__api__").json
    post = document["paths"][ANSWER_PATH]["post"]
    body = next(p for p in post["parameters"] if p["in"] == "body")["schema"]
    assert body["properties"]["answer"]["enum"] == ["SUCCEED", "FAIL"]
    assert body["required"] == ["answer"]
    assert {"200", "400", "403", "409", "410", "415", "503"} <= set(post["responses"])
    assert post["consumes"] == ["application/json"]


def test_answer_endpoint_never_answers_5xx(app, collection, callback):
    """Generated bodies, ids and content, as the reviewer, the admin and anonymously."""
    token, _ = callback()
    post_step(app, {"taskToken": token}, record_id="step")
    post_step(app, {"activityArn": IDLE_ACTIVITY}, record_id="idle")
    schema = schemathesis.openapi.from_wsgi("/v1/__api__", app.app)
    operation = schema[ANSWER_PATH]["POST"]

    @given(case=operation.as_strategy(), target=st.sampled_from(["step", "idle", None]))
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def answer(case, target):
        if target is not None:  # on a real step, half the time
            case.path_parameters = {"bucket_id": "stepfunction", "collection_id": "manual_steps"}
            case.path_parameters["id"] = target
        for headers in (REVIEWER, ADMIN, {}):
            response = case.call(headers=headers)
            assert response.status_code < 500 or response.status_code == 503, response.text

    answer()


INBOX_PATH = "/buckets/{bucket_id}/collections/{collection_id}/stepfunction/inbox"
STEPS_PATH = "/buckets/{bucket_id}/collections/{collection_id}/stepfunction/steps"


@pytest.mark.parametrize("path", [INBOX_PATH, STEPS_PATH])
def test_api_document_describes_the_inbox(app, path):
    get = app.get("/__api__").json["paths"][path]["get"]
    query = {p["name"] for p in get["parameters"] if p["in"] == "query"}
    assert query == {"_limit", "_token", "_sort", "q", "id"}
    assert {"200", "400", "401", "404"} <= set(get["responses"])


@pytest.mark.parametrize("path", [INBOX_PATH, STEPS_PATH])
def test_inbox_never_answers_5xx(app, collection, path):
    post_step(app, {"subject": "Pending"}, record_id="step")
    schema = schemathesis.openapi.from_wsgi("/v1/__api__", app.app)
    operation = schema[path]["GET"]

    @given(case=operation.as_strategy(), real=st.booleans())
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def inbox(case, real):
        if real:  # on the steps collection, half the time
            case.path_parameters = {"bucket_id": "stepfunction", "collection_id": "manual_steps"}
        for headers in (REVIEWER, ADMIN, {}):
            response = case.call(headers=headers)
            assert response.status_code < 500, response.text

    inbox()
