"""Fixtures: a Kinto app with the plugin (memory or PostgreSQL), and the local Step Functions."""

import json
import os
import time
import uuid

import kinto
import pytest
import webtest
from botocore.config import Config
from kinto.core.testing import get_request_class, get_user_headers

from stepfunction.testing import Emulator


POSTGRESQL_URL = os.environ.get(
    "STEPFUNCTION_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REGION = "us-west-2"
BACKENDS = ["memory", "postgresql"]

REVIEWER = get_user_headers("reviewer")
STRANGER = get_user_headers("stranger")
ADMIN = get_user_headers("admin")


def backend_settings(backend):
    if backend == "memory":
        return {
            "storage_backend": "kinto.core.storage.memory",
            "permission_backend": "kinto.core.permission.memory",
            "cache_backend": "kinto.core.cache.memory",
        }
    return {
        "storage_backend": "kinto.core.storage.postgresql",
        "storage_url": POSTGRESQL_URL,
        "permission_backend": "kinto.core.permission.postgresql",
        "permission_url": POSTGRESQL_URL,
        "cache_backend": "kinto.core.cache.postgresql",
        "cache_url": POSTGRESQL_URL,
        "storage_pool_size": "10",
    }


def app_settings(backend, emulator, **extra):
    settings = {
        **kinto.DEFAULT_SETTINGS,
        **backend_settings(backend),
        "includes": "stepfunction kinto.plugins.history",
        "multiauth.policies": "basicauth",
        "userid_hmac_secret": "test-secret",
        "bucket_create_principals": "system.Authenticated",
        "stepfunction.aws_access_key": "testing",
        "stepfunction.aws_secret_key": "testing",
        "stepfunction.aws_region": REGION,
        "stepfunction.aws_endpoint_url": emulator.endpoint_url,
    }
    settings.update(extra)
    return settings


def make_app(settings):
    wsgi = kinto.main({}, **settings)
    app = webtest.TestApp(wsgi)
    app.RequestClass = get_request_class("v1")
    registry = wsgi.registry
    for backend in (registry.storage, registry.permission, registry.cache):
        backend.initialize_schema()
        backend.flush()
    return app


@pytest.fixture(scope="session")
def emulator():
    with Emulator(poll_seconds=1) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def fresh_emulator(request):
    """Every test starts on an empty Step Functions (when it uses one)."""
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").reset()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def app_factory(backend, emulator):
    """Build Kinto apps on the test's backend: ``app_factory(**settings)``."""
    apps = []

    def factory(**extra):
        app = make_app(app_settings(backend, emulator, **extra))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        registry = app.app.registry
        for store in (registry.storage, registry.permission, registry.cache):
            store.flush()


@pytest.fixture
def app(app_factory):
    return app_factory()


def user_id(app, headers):
    return app.get("/", headers=headers).json["user"]["id"]


class Workflows:
    """State machines on the emulator, and what their executions really did."""

    def __init__(self, emulator, region=REGION):
        self.emulator = emulator
        self.region = region
        self.sfn = emulator.client(region)
        self.sqs = emulator.client(region, "sqs", config=Config(retries={"max_attempts": 0}))

    def activity(self):
        name = f"Review-{uuid.uuid4().hex[:12]}"
        return self.sfn.create_activity(name=name)["activityArn"]

    def _machine(self, state):
        definition = {"StartAt": "ManualStep", "States": {"ManualStep": {**state, "End": True}}}
        return self.sfn.create_state_machine(
            name=f"Machine-{uuid.uuid4().hex[:12]}",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/StepFunctions",
        )["stateMachineArn"]

    def activity_machine(self, activity_arn, timeout=300, heartbeat=None):
        state = {"Type": "Task", "Resource": activity_arn, "TimeoutSeconds": timeout}
        if heartbeat:
            state["HeartbeatSeconds"] = heartbeat
        return self._machine(state)

    def queue(self):
        return self.sqs.create_queue(QueueName=f"steps-{uuid.uuid4().hex[:12]}")["QueueUrl"]

    def callback_machine(self, queue_url, timeout=300, heartbeat=None):
        state = {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": queue_url,
                "MessageBody": {"TaskToken.$": "$$.Task.Token", "Payload.$": "$"},
            },
            "TimeoutSeconds": timeout,
        }
        if heartbeat:
            state["HeartbeatSeconds"] = heartbeat
        return self._machine(state)

    def start(self, machine_arn, payload=None):
        return self.sfn.start_execution(
            stateMachineArn=machine_arn, input=json.dumps(payload or {})
        )["executionArn"]

    def history_types(self, execution_arn):
        events = self.sfn.get_execution_history(executionArn=execution_arn)["events"]
        return [event["type"] for event in events]

    def wait_scheduled(self, execution_arn, event="ActivityScheduled", timeout=10):
        deadline = time.monotonic() + timeout
        while event not in self.history_types(execution_arn):
            assert time.monotonic() < deadline, f"{execution_arn} never reached {event}"
            time.sleep(0.02)

    def receive_token(self, queue_url, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get(
                "Messages", []
            )
            if messages:
                return json.loads(messages[0]["Body"])
        raise AssertionError(f"no message on {queue_url}")

    def wait_done(self, execution_arn, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            assert time.monotonic() < deadline, f"{execution_arn} still RUNNING"
            time.sleep(0.05)

    def status(self, execution_arn):
        return self.sfn.describe_execution(executionArn=execution_arn)["status"]


@pytest.fixture
def workflows(emulator):
    return Workflows(emulator)


@pytest.fixture
def collection(app):
    """The seed's bucket and collection, writable by the admin, readable by the reviewer."""
    reviewer = user_id(app, REVIEWER)
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(
        "/buckets/stepfunction/collections/manual_steps",
        {"permissions": {"read": [reviewer]}},
        headers=ADMIN,
    )
    return "/buckets/stepfunction/collections/manual_steps"
