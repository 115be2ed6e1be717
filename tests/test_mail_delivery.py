"""Finding 5 of issue 13: every address gets its mail exactly once, on a real SMTP server.

SIGTERM mid-send, odd deadlines, addresses refused for good, late reviewers, invalid addresses,
and mail with nothing to send it."""

import asyncio
import email
import email.policy
import logging
import signal
import threading
import time

import pytest
import transaction
from aiosmtpd.controller import Controller

from stepfunction import records
from stepfunction.notices import NEVER, new_notice, overdue_notices
from stepfunction.testing.mailbox import free_port
from tests.conftest import (
    ADMIN,
    REVIEWER,
    STEPS,
    _Bare,
    add_records,
    mail_settings,
    notice_of,
    permissions_of,
    post_step,
    user_id,
    wait_for,
)
from tests.test_links import mailed  # noqa: F401 (a fixture)
from tests.test_worker import worker_processes, write_ini  # noqa: F401 (a fixture)


ALICE, BOB, GONE = "alice@example.com", "bob@example.com", "gone@example.com"


class Server:
    """aiosmtpd that takes ``delay`` seconds to accept each mail, and refuses the addresses
    of ``refused`` for good (550 at RCPT), and every address with ``reply`` when set (an
    outage: "451 …"), counting every attempt."""

    def __init__(self):
        self.port = free_port()
        self.delay = 0.0
        self.refused = set()
        self.reply = None
        self.attempts = {}
        self.messages = []
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.attempts[address] = self.attempts.get(address, 0) + 1
        if self.reply:
            return self.reply
        if address in self.refused:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address):
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def subjects(self, address):
        return [m["Subject"] for m in self.to(address)]


@pytest.fixture
def smtp():
    server = Server()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def mail_app(app_factory, smtp):
    def make(**extra):
        app = app_factory(**mail_settings(smtp, **extra))
        app.put_json("/buckets/stepfunction", {}, headers=ADMIN)
        app.put_json(STEPS, {"permissions": {"read": [user_id(app, REVIEWER)]}}, headers=ADMIN)
        return app

    return make


def settled(app, record_id, timeout=15):
    return wait_for(
        lambda: (notice_of(app, record_id) or {}).get("due") == NEVER,
        timeout,
        message="every mail of the step sent",
    )


# --- SIGTERM mid-send ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql"])  # a worker process shares the database
def test_sigterm_during_a_slow_smtp_send_mails_every_address_exactly_once(
    mail_app,
    smtp,
    callback,
    emulator,
    tmp_path,
    worker_processes,  # noqa: F811
):
    app = mail_app()
    ini = write_ini(tmp_path / "worker.ini", emulator, stop_seconds=3)
    head = "[app:main]\nuse = egg:kinto\n"
    mail = "".join(f"{k} = {v}\n" for k, v in mail_settings(smtp).items())
    ini.write_text(ini.read_text().replace(head, head + mail))
    smtp.delay = 1.0
    reviewers = [f"r{i}@example.com" for i in range(8)]
    token, _ = callback()
    record = post_step(app, {"subject": "Pay", "reviewer": reviewers, "taskToken": token})

    first = worker_processes(ini)
    first.wait_started()
    wait_for(lambda: len(smtp.messages) >= 2, 20, "two mails accepted")
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(20) == 0, first.output()
    served = len(smtp.messages)
    assert served < len(reviewers)  # stopped mid-pass

    restarted = time.monotonic()
    worker_processes(ini).wait_started()
    settled(app, record["id"], timeout=30)
    assert time.monotonic() - restarted < 25  # promptly: not after a long lease
    for address in reviewers:
        assert smtp.subjects(address) == ["Your review is needed: Pay"], address


# --- A notice that can't be processed --------------------------------------------------------


def _stored_step(app, record_id, data, notice):
    """A step as an earlier version could have stored it, with its notice: no checks."""
    add_records(app, [({"id": record_id, "status": "UNANSWERED", **data}, {})])
    uri = f"{STEPS}/records/{record_id}"
    with transaction.manager:
        records.put_notice(_Bare(app.app.registry), uri, notice)


def test_odd_deadlines_and_a_broken_notice_beside_a_normal_step_block_nothing(
    mail_app, smtp, callback, start_worker, caplog
):
    app = mail_app()
    now = time.time()
    odd = {"neg": -1e12, "year1": "0001-01-01T00:00:00+23:59", "huge": 1e300, "word": "soon"}
    for name, deadline in odd.items():
        data = {"reviewer": f"{name}@example.com", "deadline": deadline, "subject": name}
        _stored_step(app, name, data, new_notice(now - 1))
    broken = {k: v for k, v in new_notice(now - 1).items() if k != "nonce"}
    _stored_step(app, "broken", {"reviewer": "broken@example.com"}, broken)
    token, _ = callback()
    normal = post_step(app, {"subject": "Normal", "reviewer": ALICE, "taskToken": token})
    start_worker(app)

    settled(app, normal["id"])
    assert smtp.subjects(ALICE) == ["Your review is needed: Normal"]
    for name in odd:  # an unusable deadline is ignored: the links last their usual time
        assert len(smtp.to(f"{name}@example.com")) == 1
    assert smtp.to("broken@example.com") == []
    wait_for(lambda: "broken: its mail could not be made" in caplog.text, message="logged")
    assert (notice_of(app, "broken") or {}).get("errors", 0) >= 1
    assert notice_of(app, "broken")["due"] > time.time()  # later, alone


@pytest.mark.parametrize(
    "deadline", [-1e12, "0001-01-01T00:00:00+23:59", 1e300, "tomorrow", True, "99999-01-01"]
)
def test_an_odd_deadline_is_refused_when_written(mail_app, deadline):
    app = mail_app()
    body = {"data": {"taskToken": "t", "reviewer": ALICE, "deadline": deadline}}
    error = app.post_json(f"{STEPS}/records", body, headers=ADMIN, status=400).json
    assert error["errno"] == 107 and error["details"][0]["name"] == "deadline"
    record = post_step(app, {"taskToken": "t", "reviewer": ALICE}, record_id="r1")
    acl = permissions_of(app, "r1")
    for write in (
        lambda: app.patch_json(f"{STEPS}/records/r1", {"data": {"deadline": deadline}}, **HDR),
        lambda: app.put_json(
            f"{STEPS}/records/r1", {"data": {**record, "deadline": deadline}}, **HDR
        ),
    ):
        assert write().json["details"][0]["name"] == "deadline"
    assert permissions_of(app, "r1") == acl
    assert "deadline" not in app.get(f"{STEPS}/records/r1", headers=ADMIN).json["data"]


HDR = {"headers": ADMIN, "status": 400}


# --- An address refused for good -------------------------------------------------------------


def test_a_permanently_refusing_address_ends_after_bounded_tries_and_is_on_the_record(
    mail_app, smtp, callback, start_worker
):
    app = mail_app(**{"stepfunction.remind_every": "0.3", "stepfunction.remind_max": "2"})
    smtp.refused.add(GONE)
    token, _ = callback()
    record = post_step(app, {"subject": "Pay", "reviewer": [GONE, ALICE], "taskToken": token})
    acl = permissions_of(app, record["id"])
    start_worker(app)
    settled(app, record["id"])
    assert smtp.attempts[GONE] == 3  # PERMANENT_TRIES, then given up
    assert smtp.subjects(ALICE) == [
        "Your review is needed: Pay",
        "Reminder (1): Your review is needed: Pay",
        "Reminder (2): Your review is needed: Pay",
    ]
    for headers in (ADMIN, REVIEWER):  # readers see it too (the address is in reviewer)
        data = app.get(f"{STEPS}/records/{record['id']}", headers=headers).json["data"]
        assert data["unreached"] == [
            {"address": GONE, "reason": "refused by the mail server (550)"}
        ]
    assert permissions_of(app, record["id"]) == acl
    # Plugin-written only: the author can't write it away.
    body = {"data": {"unreached": []}}
    refused = app.patch_json(f"{STEPS}/records/{record['id']}", body, headers=ADMIN, status=403)
    assert refused.json["details"]["name"] == "unreached"


# --- Late reviewers --------------------------------------------------------------------------


def test_a_late_reviewer_gets_a_first_mail_not_a_reminder(mail_app, smtp, callback, start_worker):
    app = mail_app(**{"stepfunction.remind_every": "0.3", "stepfunction.remind_max": "1"})
    token, _ = callback()
    record = post_step(app, {"subject": "Pay", "reviewer": ALICE, "taskToken": token})
    start_worker(app)
    settled(app, record["id"])  # ALICE's reminders are over
    assert len(smtp.to(ALICE)) == 2
    url = f"{STEPS}/records/{record['id']}"
    app.patch_json(url, {"data": {"reviewer": [ALICE, BOB]}}, headers=ADMIN)
    wait_for(lambda: smtp.to(BOB), message="the late reviewer's mail")
    settled(app, record["id"])
    assert smtp.subjects(BOB) == [
        "Your review is needed: Pay",
        "Reminder (1): Your review is needed: Pay",
    ]
    assert len(smtp.to(ALICE)) == 2  # nothing more for her


def test_a_reviewer_added_between_reminders_is_mailed_at_once(
    mail_app, smtp, callback, start_worker
):
    app = mail_app(**{"stepfunction.remind_every": "60"})
    token, _ = callback()
    record = post_step(app, {"subject": "Pay", "reviewer": ALICE, "taskToken": token})
    start_worker(app)
    wait_for(lambda: smtp.to(ALICE), message="the first mail")
    added = time.monotonic()
    url = f"{STEPS}/records/{record['id']}"
    app.patch_json(url, {"data": {"reviewer": [ALICE, BOB]}}, headers=ADMIN)
    wait_for(lambda: smtp.to(BOB), message="the added reviewer's mail")
    assert time.monotonic() - added < 10  # not at ALICE's next reminder, a minute later
    assert smtp.subjects(BOB) == ["Your review is needed: Pay"]
    assert smtp.subjects(ALICE) == ["Your review is needed: Pay"]


# --- Invalid addresses -----------------------------------------------------------------------

INVALID = [
    "a\x01b@example.com",
    "a\r\nBcc: v@example.com",
    "a%b@example.com",
    "a!b@example.com",
    '"a b"@example.com',
    "é@example.com",
    "x@localhost",
    "a@example.com, b@example.com",
    " a@example.com",
    "",
    "x" * 300 + "@example.com",
]


@pytest.mark.parametrize("address", INVALID)
def test_invalid_addresses_are_refused_when_written(mail_app, address):
    app = mail_app()
    url = f"{STEPS}/records/r1"
    record = post_step(app, {"taskToken": "t", "reviewer": ALICE}, record_id="r1")
    acl = permissions_of(app, "r1")
    writes = [
        lambda: app.post_json(f"{STEPS}/records", {"data": {"reviewer": [address]}}, **HDR),
        lambda: app.put_json(url, {"data": {**record, "reviewer": address}}, **HDR),
        lambda: app.patch_json(url, {"data": {"reviewer": [ALICE, address]}}, **HDR),
        lambda: app.patch(
            url,
            f'[{{"op": "add", "path": "/data/reviewer", "value": {_json(address)}}}]',
            headers={**ADMIN, "Content-Type": "application/json-patch+json"},
            status=400,
        ),
    ]
    for write in writes:
        error = write().json
        assert error["errno"] == 107 and error["details"][0]["name"] == "reviewer"
    assert app.get(url, headers=ADMIN).json["data"]["reviewer"] == ALICE
    assert permissions_of(app, "r1") == acl


def _json(value):
    import json

    return json.dumps(value)


def test_invalid_addresses_of_a_task_input_are_left_out_and_listed_as_unreached(
    app_factory, smtp, workflows, start_worker
):
    activity = workflows.activity()
    app = app_factory(**mail_settings(smtp, **{"stepfunction.activities": activity}))
    reviewers = [ALICE, "a%b@example.com", "c\x01d@example.com"]
    workflows.start(
        workflows.activity_machine(activity),
        {"id": "from-input", "subject": "Input", "reviewer": reviewers, "deadline": -1e12},
    )
    start_worker(app)
    settled(app, "from-input")
    data = records.read_record(
        _Bare(app.app.registry), "stepfunction", "manual_steps", "from-input"
    )
    assert data["reviewer"] == [ALICE] and "deadline" not in data
    assert [u["address"] for u in data["unreached"]] == reviewers[1:]
    assert smtp.subjects(ALICE) == ["Your review is needed: Input"]
    assert len(smtp.messages) == 1


# --- Mail with nothing to send it ------------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory"])
def test_mail_on_memory_without_a_worker_warns_at_start_up(app_factory, smtp, caplog):
    with caplog.at_level(logging.WARNING, logger="stepfunction"):
        app_factory(**mail_settings(smtp))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("nothing will send it" in w and "worker_in_process" in w for w in warnings)
    assert any("stepfunction-worker" in w for w in warnings)


def test_no_warning_when_something_sends_the_mail(app_factory, smtp, caplog, backend):
    extra = {"stepfunction.worker_in_process": "true"} if backend == "memory" else {}
    with caplog.at_level(logging.WARNING, logger="stepfunction"):
        app = app_factory(**mail_settings(smtp, **extra))
    assert "nothing will send it" not in caplog.text
    worker = getattr(app.app.registry, "stepfunction_worker", None)
    if worker is not None:
        worker.stop(timeout=10)


# --- The heartbeat's reading -----------------------------------------------------------------


def test_overdue_notices_are_the_due_ones_past_the_grace(mail_app, smtp):
    app = mail_app()
    now = time.time()
    _stored_step(app, "late", {"reviewer": ALICE}, new_notice(now - 600))
    _stored_step(app, "fresh", {"reviewer": BOB}, new_notice(now - 5))
    sending = {**new_notice(now - 600), "lease": now + 30}  # a worker is on it
    _stored_step(app, "sending", {"reviewer": "c@example.com"}, sending)
    request = _Bare(app.app.registry)
    assert [n["uri"] for n in overdue_notices(request, now, grace=300)] == [
        f"{STEPS}/records/late"
    ]


def test_without_mail_reviewer_is_free_text_as_in_the_original_seed(app, collection):
    post_step(app, {"taskToken": "t", "reviewer": "<reviewer email address here>"}, record_id="r")
    body = {"data": {"deadline": -1e12}}
    error = app.patch_json(f"{STEPS}/records/r", body, headers=ADMIN, status=400).json
    assert error["details"][0]["name"] == "deadline"  # a deadline is checked all the same


# --- Votes ---------------------------------------------------------------------------------


def test_a_link_reviewer_who_voted_is_reminded_no_more(mailed, mailbox):  # noqa: F811
    from tests.test_links import confirm

    reminders = {"stepfunction.remind_every": "1.5", "stepfunction.remind_max": "2"}
    app, record, _, links = mailed(data={"quorum": 2}, **reminders)
    confirm(app, links[ALICE]["Approve"], status=202)  # her vote: one of the two approvals needed
    data = app.get(f"{STEPS}/records/{record['id']}", headers=ADMIN).json["data"]
    assert data["status"] == "UNANSWERED" and data["votes"][0]["by"] == f"link:{ALICE}"
    voted = len(mailbox.to(ALICE))
    settled(app, record["id"], timeout=30)  # BOB's reminders are all sent
    assert [m["Subject"] for m in mailbox.to(BOB)] == [
        "Your review is needed: Pay invoice 42",
        "Reminder (1): Your review is needed: Pay invoice 42",
        "Reminder (2): Your review is needed: Pay invoice 42",
    ]
    assert voted < 3 and len(mailbox.to(ALICE)) == voted
