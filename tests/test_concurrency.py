"""Concurrent answers through several Kinto processes on one PostgreSQL."""

import collections
import contextlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pytest
from kinto.views.records import Record
from sqlalchemy import text

from tests.conftest import ADMIN, REVIEWER, answer_url, app_settings, post_step, user_id


KINTO = str(Path(sys.executable).parent / "kinto")
PROCESSES = 3
COLLECTION = "/buckets/stepfunction/collections/manual_steps"


@pytest.fixture
def backend():
    return "postgresql"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_ini(path, settings, port):
    lines = ["[server:main]", "use = egg:waitress#main", "host = 127.0.0.1", f"port = {port}"]
    lines += ["threads = 8", "", "[app:main]", "use = egg:kinto"]
    for key, value in settings.items():
        if value in (None, "") or not isinstance(value, str | int | float | bool):
            continue
        prefixed = key if key.startswith(("stepfunction.", "multiauth.")) else f"kinto.{key}"
        lines.append(f"{prefixed} = {value}")
    path.write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def kinto_processes(settings, tmp_path, count):
    """``count`` Kinto processes with ``settings``, started; yields their ``Servers``."""
    processes, urls, logs = [], [], []
    try:
        for i in range(count):
            port = free_port()
            logs.append(tmp_path / f"kinto-{i}.log")
            ini = tmp_path / f"kinto-{i}.ini"
            write_ini(ini, settings, port)
            processes.append(
                subprocess.Popen(
                    [KINTO, "start", "--ini", str(ini)],
                    stdout=subprocess.DEVNULL,
                    stderr=logs[-1].open("w"),
                )
            )
            urls.append(f"http://127.0.0.1:{port}/v1")
        for url in urls:
            deadline = time.monotonic() + 60  # Kinto processes starting on a loaded machine
            while True:
                try:
                    urllib.request.urlopen(url + "/", timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{url} did not start"
                    time.sleep(0.1)
        yield Servers(urls, logs)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


@pytest.fixture
def servers(app, emulator, tmp_path):
    """Kinto processes sharing the test's PostgreSQL database; yields their ``Servers``."""
    with kinto_processes(app_settings("postgresql", emulator), tmp_path, PROCESSES) as running:
        yield running


class Servers(NamedTuple):
    urls: list
    logs: list

    def log_text(self):
        return "".join(log.read_text() for log in self.logs)


def post_answer(url, record_id, answer, deadline=30):
    """POST an answer as a client must: again after a response with Retry-After (503, or
    Kinto's 409 "please retry" when two writes race), up to a deadline."""
    give_up = time.monotonic() + deadline
    while True:
        status, body, retry = post_once(url, record_id, answer)
        if not retry or time.monotonic() > give_up:
            return status, body
        time.sleep(0.1)


def post_once(url, record_id, answer):
    request = urllib.request.Request(
        f"{url}{COLLECTION}/records/{record_id}/stepfunction",
        data=json.dumps({"answer": answer}).encode(),
        headers={**REVIEWER, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=90) as response:
            return response.status, json.loads(response.read()), False
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), "Retry-After" in e.headers


def all_at_once(calls):
    """Run (function, args) pairs on threads released together; results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, func, args):
        barrier.wait()
        results[i] = func(*args)

    threads = [threading.Thread(target=run, args=(i, *c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def make_records(app, activity, count):
    reviewer = user_id(app, REVIEWER)
    return [
        app.post_json(
            f"{COLLECTION}/records",
            {"data": {"activityArn": activity}, "permissions": {"write": [reviewer]}},
            headers=ADMIN,
        ).json["data"]["id"]
        for _ in range(count)
    ]


def test_concurrent_answers_to_one_record(app, collection, workflows, emulator, servers):
    activity = workflows.activity()
    execution = workflows.start(workflows.activity_machine(activity))
    workflows.wait_scheduled(execution)
    [record_id] = make_records(app, activity, 1)
    emulator.reset_calls()

    answers = ["SUCCEED", "FAIL"] * 4
    results = all_at_once(
        [(post_answer, (servers.urls[i % PROCESSES], record_id, a)) for i, a in enumerate(answers)]
    )

    stored = app.get(f"{COLLECTION}/records/{record_id}", headers=ADMIN).json["data"]
    winner = stored["status"]
    assert winner in ("SUCCEED", "FAIL")
    for answer, (status, body) in zip(answers, results, strict=True):
        assert status == (200 if answer == winner else 409), body
    # One task fetched for the record, and the execution resumed with the recorded answer.
    assert collections.Counter(emulator.calls)["GetActivityTask"] == 1
    expected = "SUCCEEDED" if winner == "SUCCEED" else "FAILED"
    assert workflows.wait_done(execution)["status"] == expected
    assert stored["answer"]["answer"] == winner


def test_concurrent_answers_to_records_sharing_an_activity(
    app, collection, workflows, emulator, servers
):
    activity = workflows.activity()
    machine = workflows.activity_machine(activity)
    executions = [workflows.start(machine, {"n": n}) for n in range(4)]
    for execution in executions:
        workflows.wait_scheduled(execution)
    records_ids = make_records(app, activity, 4)
    emulator.reset_calls()

    calls = [
        (post_answer, (servers.urls[(i + j) % PROCESSES], record_id, "SUCCEED"))
        for i, record_id in enumerate(records_ids)
        for j in range(2)
    ]
    results = all_at_once(calls)

    assert [status for status, _ in results] == [200] * len(calls), results
    stored = [
        app.get(f"{COLLECTION}/records/{r}", headers=ADMIN).json["data"] for r in records_ids
    ]
    assert {record["status"] for record in stored} == {"SUCCEED"}
    counted = collections.Counter(emulator.calls)
    assert counted["GetActivityTask"] == len(records_ids)  # one task per record, none lost
    assert {workflows.wait_done(e)["status"] for e in executions} == {"SUCCEEDED"}
    # The servers logged every task, none of them in full (not even in database errors).
    log = servers.log_text()
    assert log.count("received task:") == len(records_ids)
    for response in results:
        assert "taskToken" not in response[1]["data"] or (
            response[1]["data"]["taskToken"] == "(stored)"
        )


def callback_steps(app, workflows, count):
    """``count`` executions waiting on callback tokens, each with its record (executionArn
    included); returns [(record id, execution ARN)]."""
    queue = workflows.queue()
    machine = workflows.callback_machine(queue)
    executions = {workflows.start(machine, {"n": n}): n for n in range(count)}
    tokens = {}
    deadline = time.monotonic() + 60
    while len(tokens) < count:
        assert time.monotonic() < deadline, f"{len(tokens)} of {count} tokens"
        for message in workflows.sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            body = json.loads(message["Body"])
            tokens[body["Payload"]["n"]] = body["TaskToken"]
    steps = []
    reviewer = user_id(app, REVIEWER)
    for execution, n in executions.items():
        data = {"taskToken": tokens[n], "executionArn": execution}
        body = {"data": data, "permissions": {"write": [reviewer]}}
        record_id = app.post_json(f"{COLLECTION}/records", body, headers=ADMIN).json["data"]["id"]
        steps.append((record_id, execution))
    return steps


def test_storm_of_answers_resumes_each_execution_once(
    app, collection, workflows, emulator, servers
):
    """240 answers at once through three processes on one PostgreSQL, SUCCEED and FAIL
    mixed, four per record: every execution resumed once, with what its record says."""
    steps = callback_steps(app, workflows, 60)
    calls = [
        (post_answer, (servers.urls[(i + j) % PROCESSES], record_id, answer))
        for i, (record_id, _) in enumerate(steps)
        for j, answer in enumerate(["SUCCEED", "FAIL", "SUCCEED", "FAIL"])
    ]

    results = all_at_once(calls)

    statuses = collections.Counter(status for status, _ in results)
    assert set(statuses) <= {200, 409}, [r for r in results if r[0] not in (200, 409)]
    expected = {"SUCCEED": "SUCCEEDED", "FAIL": "FAILED"}
    for record_id, execution in steps:
        record = app.get(f"{COLLECTION}/records/{record_id}", headers=ADMIN).json["data"]
        assert workflows.wait_done(execution)["status"] == expected[record["status"]]
        closings = [
            t for t in workflows.history_types(execution) if t in ("TaskSucceeded", "TaskFailed")
        ]
        assert len(closings) == 1
    # Each record: its two answers like the recorded one got 200, the two others 409.
    by_record = collections.defaultdict(list)
    for (_, (_, record_id, answer)), (status, _body) in zip(calls, results, strict=True):
        by_record[record_id].append((answer, status, _body.get("message")))
    for record_id, answered in by_record.items():
        record = app.get(f"{COLLECTION}/records/{record_id}", headers=ADMIN).json["data"]
        for answer, status, _message in answered:
            assert status == (200 if answer == record["status"] else 409), (record_id, answered)


def test_write_lost_to_the_timestamp_race_is_tried_again(
    app, collection, callback, emulator, monkeypatch, caplog
):
    """Kinto's timestamp race (a real IntegrityError, the transaction aborted) fails the first
    try of an accepted answer's write: it is tried again from its savepoint, in the request,
    and Kinto's ERROR for it is logged at DEBUG."""
    token, _ = callback()
    record = post_step(app, {"taskToken": token})
    patch, tries = Record.patch, []

    def racing(resource):
        tries.append(1)
        if len(tries) == 1:  # a unique violation, as the race gives
            with resource.request.registry.storage.client.connect() as session:
                session.execute(
                    text(
                        "INSERT INTO timestamps (parent_id, resource_name, last_modified)"
                        " VALUES ('race', 'race', now()), ('race', 'race', now())"
                    )
                )
        return patch(resource)

    monkeypatch.setattr(Record, "patch", racing)
    emulator.reset_calls()
    with caplog.at_level(logging.INFO):
        response = app.post_json(answer_url(record["id"]), {"answer": "SUCCEED"}, headers=REVIEWER)

    assert len(tries) == 2
    assert response.json["data"]["status"] == "SUCCEED"
    assert emulator.calls == ["SendTaskSuccess"]
    stored = app.get(f"{COLLECTION}/records/{record['id']}", headers=ADMIN).json["data"]
    assert stored["status"] == "SUCCEED"
    assert stored["answer"]["by"] == user_id(app, REVIEWER)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
