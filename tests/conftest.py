"""Fixtures: a Kinto app with the plugin (memory or PostgreSQL), and the local Step Functions."""

import contextlib
import os
import time

import kinto
import pytest
import transaction
import webtest
from kinto.core.testing import get_request_class, get_user_headers
from sqlalchemy import text
from webtest.http import StopableWSGIServer

from stepfunction import records
from stepfunction.testing import Emulator, Workflows, apps
from stepfunction.testing.mailbox import Mailbox
from stepfunction.worker import Worker


POSTGRESQL_URL = os.environ.get(
    "STEPFUNCTION_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REGION = "us-west-2"
BACKENDS = ["memory", "postgresql"]

REVIEWER = get_user_headers("reviewer")
STRANGER = get_user_headers("stranger")
ADMIN = get_user_headers("admin")
STEPS = "/buckets/stepfunction/collections/manual_steps"


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
        # Answers fetch the tasks of the tests' activities (the worker's tests list theirs).
        "stepfunction.fetch_activities": f"arn:aws:states:{REGION}:*:activity:*",
    }
    settings.update(extra)
    return settings


def make_app(settings):
    """A Kinto app on ``settings``, its storage empty; released at the end of the test that
    built it (see ``released_apps``)."""
    wsgi = apps.build(settings)
    _built.append(wsgi.registry)
    app = webtest.TestApp(wsgi)
    app.RequestClass = get_request_class("v1")
    registry = wsgi.registry
    for backend in (registry.storage, registry.permission, registry.cache):
        backend.initialize_schema()
        backend.flush()
    return app


_built = []  # the registries of the apps built by the current test


@pytest.fixture(autouse=True)
def released_apps():
    """Release the apps a test built (their in-process workers stopped, Kinto's process-wide
    services forgotten), else each stays alive to the end of the run (~14 MB each)."""
    yield
    stopped = [apps.release(registry) for registry in _built]
    _built.clear()
    assert all(stopped), "an in-process worker did not stop"


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
    return STEPS


def post_step(app, data, reviewer=REVIEWER, record_id=None, collection=STEPS):
    """A step as its author (the admin) posts it: writable by the reviewer. Returns its data."""
    body = {"data": data, "permissions": {"write": [user_id(app, reviewer)]}}

    def write():
        """The response, or None when Kinto asks to retry (Retry-After: a 409 when the write
        raced another one, a worker's, for the collection's timestamp on PostgreSQL)."""
        if record_id:
            url, send = f"{collection}/records/{record_id}", app.put_json
        else:
            url, send = f"{collection}/records", app.post_json
        response = send(url, body, headers=ADMIN, expect_errors=True)
        return None if "Retry-After" in response.headers else response

    response = wait_for(write, 30, "a write Kinto does not ask to retry")
    if response.status_int >= 400:
        raise webtest.AppError("Bad response: %s\n%s", response.status, response)
    return response.json["data"]


def answer_url(record_id, collection=STEPS):
    return f"{collection}/records/{record_id}/stepfunction"


def permissions_of(app, record_id, collection=STEPS):
    """The record's whole ACL, as its author reads it (principals sorted: backends list them
    in any order)."""
    acl = app.get(f"{collection}/records/{record_id}", headers=ADMIN).json["permissions"]
    return {perm: sorted(principals) for perm, principals in acl.items()}


def wait_for(predicate, timeout=30, message="condition"):
    """Poll ``predicate`` until it returns a true value, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {message}"
        time.sleep(0.02)


@pytest.fixture
def waiting(workflows):
    """Start an execution waiting on a new activity: returns (activity ARN, execution ARN)."""

    def start(payload=None, **machine):
        activity = workflows.activity()
        execution = workflows.start(workflows.activity_machine(activity, **machine), payload)
        workflows.wait_scheduled(execution)
        return activity, execution

    return start


def lose_race_once(monkeypatch, storage, resource_name="history"):
    """The next write of a ``resource_name`` object (a history entry, a record) on PostgreSQL
    fails as Kinto's timestamp race makes it fail (a unique violation); returns a list that
    holds one item once it has."""
    create, raced = storage.create, []

    def racing_create(*args, **kwargs):
        if kwargs.get("resource_name") == resource_name and not raced:
            raced.append(1)
            with storage.client.connect() as session:
                session.execute(
                    text(
                        "INSERT INTO timestamps (parent_id, resource_name, last_modified)"
                        " VALUES ('race', 'race', now()), ('race', 'race', now())"
                    )
                )
        return create(*args, **kwargs)

    monkeypatch.setattr(storage, "create", racing_create)
    return raced


@pytest.fixture
def mail_app(app_factory, mailbox, start_worker):
    """An app that mails its steps' reviewers (the in-process worker), with the steps
    collection the admin created."""
    app = app_factory(**mail_settings(mailbox))
    app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
    app.put_json(STEPS, {}, headers=ADMIN)
    start_worker(app)
    return app


@pytest.fixture
def callback(workflows):
    """Start an execution waiting on a callback token: returns (token, execution ARN)."""

    def start(payload=None, **machine):
        queue = workflows.queue()
        execution = workflows.start(workflows.callback_machine(queue, **machine), payload)
        return workflows.receive_token(queue)["TaskToken"], execution

    return start


# A worker that retries and polls fast, for tests.
FAST = {"retry_delays": (0.01, 0.02), "sqs_wait_seconds": 1, "error_backoff": (0.05, 0.5)}


@pytest.fixture
def start_worker():
    """Start a worker on an app's registry; stopped at the end of the test."""
    workers = []

    def start(app, **options):
        worker = Worker(app.app.registry, **{**FAST, **options}).start(daemon=True)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop(timeout=30)  # its polls end within seconds; none may outlive its test


def stored_token(app, record_id, collection=STEPS):
    """The task token the plugin keeps for a record (no endpoint serves it), or None."""
    uri = f"{collection}/records/{record_id}"
    storage = app.app.registry.storage
    tasks = storage.list_all(resource_name=records.TASK, parent_id=uri)
    return tasks[0].get("token") if tasks else None


# Mail: a real SMTP server, and the settings that send a step's reviewers their mails.
LINK_SECRET = "a-test-secret-of-at-least-32-characters"
SENDER = "steps@example.com"


@pytest.fixture(scope="session")
def mailbox_server():
    with Mailbox() as mailbox:
        yield mailbox


@pytest.fixture
def mailbox(mailbox_server):
    mailbox_server.clear()
    yield mailbox_server
    mailbox_server.clear()


def mail_settings(mailbox, public_url="http://localhost/v1/", **extra):
    return {
        "mail.host": "127.0.0.1",
        "mail.port": str(mailbox.port),
        "mail.default_sender": SENDER,
        "stepfunction.public_url": public_url,
        "stepfunction.link_secret": LINK_SECRET,
        **extra,
    }


def notice_of(app, record_id, collection=STEPS):
    """The step's notice (when its next mail is due), as the plugin keeps it, or None."""
    uri = f"{collection}/records/{record_id}"
    return records.get_notice(_Bare(app.app.registry), uri)


class _Bare:
    """Just enough of a request for the storage helpers of ``records``."""

    def __init__(self, registry):
        self.registry = registry


def add_records(app, records, collection=STEPS):
    """Write ``records`` (``(data, permissions)`` pairs; ``data`` has its ``id``) straight
    into the storage and permission backends, in one transaction: no events, no history,
    nothing of the plugin. Thousands of records in seconds, for tests and benchmarks alike."""
    registry = app.app.registry
    with transaction.manager:
        for data, permissions in records:
            registry.storage.create(resource_name="record", parent_id=collection, obj=data)
            if permissions:
                uri = f"{collection}/records/{data['id']}"
                registry.permission.replace_object_permissions(uri, permissions)


@contextlib.contextmanager
def cross_site(app, attack_page):
    """Kinto over HTTP on 127.0.0.1, and an attacker's site on another origin ("localhost" is
    not "127.0.0.1" to a browser) serving ``attack_page(kinto_url)``.

    Yields ``(kinto_url, attacker_url)``; both servers stop at the end.
    """
    kinto = StopableWSGIServer.create(app.app, host="127.0.0.1")
    assert kinto.wait()
    kinto_url = kinto.application_url.rstrip("/")

    def attacker(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html")])
        return [attack_page(kinto_url).encode()]

    evil = StopableWSGIServer.create(attacker, host="localhost")
    assert evil.wait()
    try:
        yield kinto_url, evil.application_url
    finally:
        evil.shutdown()
        kinto.shutdown()


@pytest.fixture(autouse=True, scope="session")
def patient_playwright():
    """Playwright's expect() gives up after 5 s by default: not always enough for Chromium on
    a loaded machine. The condition is still awaited, only with a longer deadline."""
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
