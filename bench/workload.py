"""What the benchmark does to Kinto and Step Functions: waiting tasks, records, timed batches.

The answer path: the plugin's ``POST …/records/{id}/stepfunction {"answer": "SUCCEED"}`` by the
reviewer, against the floor of the work it must do anyway: a Kinto ``PATCH`` of the record by
the reviewer and a direct ``SendTaskSuccess`` with the same token. Both run on fresh records
holding the token of an execution that waits on a ``.waitForTaskToken`` state, prepared
outside the timing, in alternating batches.
"""

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
from botocore.config import Config

from bench.httpclient import ADMIN, REVIEWER, Kinto, Tally
from bench.processes import REGION
from bench.stats import Batch, Summary
from stepfunction.testing import Emulator


try:  # The workflows shared with the tests.
    from stepfunction.testing import Workflows
except ImportError:
    try:
        from stepfunction.testing.workflows import Workflows
    except ImportError:  # before they moved into the package
        from tests.conftest import Workflows


BUCKET = "/buckets/stepfunction"
COLLECTION = f"{BUCKET}/collections/manual_steps"
GROWTH_COLLECTION = f"{BUCKET}/collections/manual_steps_growth"
OUTPUT = json.dumps({"message": "signed off"})  # what the plugin sends for a bare SUCCEED
BATCH_MAX = 25  # Kinto's default batch_max_requests
# The dashboard's inbox (the plugin's endpoint), against a plain page of Kinto's records.
PAGES = {"plugin": "/stepfunction/inbox?_limit=20", "floor": "/records?_limit=20"}


@dataclass
class Context:
    """One backend's Kinto and the local Step Functions, as the benchmark's clients see them."""

    backend: str
    url: str  # Kinto's base URL, .../v1
    emulator: object  # processes.LocalStepFunctions
    fill_secret: str
    tally: Tally
    notes: list = field(default_factory=list)
    reviewer: str = ""  # the reviewer's principal, from GET /v1/

    def __post_init__(self):
        self.emulator_url = self.emulator.url
        self.workflows = workflows_on(self.emulator_url)
        # The floor's SendTaskSuccess: the plugin's client settings, a connection per thread.
        self.sfn = sfn_client(self.emulator_url, max_pool_connections=64)
        self.reviewer = Kinto(self.url).get("/", REVIEWER).json()["user"]["id"]

    def count(self, key, status):
        self.tally.add((self.backend, key), status)


def workflows_on(emulator_url):
    """The tests' ``Workflows`` on an emulator that runs in another process."""
    return Workflows(Emulator(port=urlsplit(emulator_url).port), REGION)


def sfn_client(emulator_url, **config):
    return boto3.client(
        "stepfunctions",
        region_name=REGION,
        endpoint_url=emulator_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            connect_timeout=5,
            read_timeout=70,
            retries={"mode": "standard", "total_max_attempts": 3},
            **config,
        ),
    )


def parallel(func, items, threads=8, timeout=600):
    """``func(item)`` for every item on daemon threads; the results in order.

    The first error is raised once all threads are done.
    """
    items = list(items)
    results = [None] * len(items)
    errors = []
    lock = threading.Lock()
    position = iter(range(len(items)))

    def run():
        while True:
            with lock:
                i = next(position, None)
            if i is None or errors:
                return
            try:
                results[i] = func(items[i])
            except Exception as e:
                errors.append(e)

    workers = [threading.Thread(target=run, daemon=True) for _ in range(min(threads, len(items)))]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    if errors:
        raise errors[0]
    if any(worker.is_alive() for worker in workers):
        raise TimeoutError(f"{func.__name__} not done after {timeout} s")
    return results


# --- Preparation (never timed) --------------------------------------------------------------


def ensure_collection(ctx, kinto, collection):
    """The bucket (owned by the admin) and a collection the reviewer may read."""
    kinto.request("PUT", BUCKET, {"data": {}}, ADMIN, {"If-None-Match": "*"})
    body = {"data": {}, "permissions": {"read": [ctx.reviewer]}}
    response = kinto.request("PUT", collection, body, ADMIN)
    if response.status not in (200, 201):
        raise RuntimeError(f"PUT {collection}: {response.status} {response.body[:300]!r}")


def callback_tokens(ctx, n, timeout=180):
    """``n`` tokens of executions waiting on a ``.waitForTaskToken`` state, and their machine.

    The emulator starts afresh first: moto looks a token up among all the executions it ever
    ran, so each batch starts from the same, small state.
    """
    ctx.emulator.fresh()
    wf = ctx.workflows
    queue = wf.queue()
    machine = wf.callback_machine(queue, timeout=1800)
    ctx.emulator.start_many(machine, n)
    tokens = []
    deadline = time.monotonic() + timeout
    while len(tokens) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(tokens)} of {n} task tokens received")
        response = wf.sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        messages = response.get("Messages", [])
        if not messages:
            continue
        tokens += [json.loads(m["Body"])["TaskToken"] for m in messages]
        wf.sqs.delete_message_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    return machine, tokens[:n]


def create_records(ctx, collection, bodies):
    """Create records as the admin (the collection's writer), 25 to a batch request; their ids."""
    chunks = [bodies[i : i + BATCH_MAX] for i in range(0, len(bodies), BATCH_MAX)]

    def post(chunk, attempts=5):
        request = {
            "defaults": {"method": "POST", "path": f"{collection}/records"},
            "requests": [{"body": body} for body in chunk],
        }
        kinto = Kinto(ctx.url)
        for attempt in range(attempts):
            response = kinto.request("POST", "/batch", request, ADMIN)
            if response.status != 409:  # Kinto's "please retry" (timestamps raced)
                break
            time.sleep(0.01 * (attempt + 1))
        answers = (response.json() or {}).get("responses", [])
        if response.status != 200 or len(answers) != len(chunk):
            raise RuntimeError(f"POST /batch: {response.status} {response.body[:300]!r}")
        bad = [(a["status"], a["body"]) for a in answers if a["status"] != 201]
        if bad:
            raise RuntimeError(f"POST /batch: record creation answered {bad[:2]}")
        return [a["body"]["data"]["id"] for a in answers]

    # One batch at a time: concurrent writes in one collection race for its timestamps.
    return [i for ids in parallel(post, chunks, threads=1) for i in ids]


def answerable_records(ctx, collection, n):
    """``n`` fresh records, each with the token of its own waiting execution."""
    machine, tokens = callback_tokens(ctx, n)
    bodies = [
        {
            "data": {"taskToken": token, "stateMachineArn": machine},
            "permissions": {"write": [ctx.reviewer]},
        }
        for token in tokens
    ]
    ids = create_records(ctx, collection, bodies)
    return list(zip(ids, tokens, strict=True))


def fill(ctx, collection, count):
    """Add ``count`` filler records (bench/filler.py, straight into storage)."""
    if count <= 0:
        return 0.0
    response = Kinto(ctx.url, timeout=900).request(
        "POST",
        "/__bench__/fill",
        {"parent_id": collection, "count": count},
        headers={"X-Bench-Secret": ctx.fill_secret},
    )
    if response.status != 200:
        raise RuntimeError(f"filling {collection}: {response.status} {response.body[:300]!r}")
    return response.json()["seconds"]


def record_count(kinto, collection, auth):
    """Total-Objects of the collection as ``auth`` sees it; 0 while it is not readable."""
    response = kinto.request("HEAD", f"{collection}/records", auth=auth)
    if response.status != 200:
        return 0
    return int(response.headers.get("Total-Objects", 0))


# --- Timed batches ----------------------------------------------------------------------------


def timed_batch(url, items, op, concurrency, timeout=300):
    """``op(kinto, item)`` for every item, from ``concurrency`` clients released together."""
    lock = threading.Lock()
    pending = iter(items)
    latencies = []
    barrier = threading.Barrier(concurrency + 1)

    def client():
        kinto = Kinto(url, timeout=60)
        kinto.connect()
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return
        while True:
            with lock:
                item = next(pending, None)
            if item is None:
                break
            started = time.perf_counter()
            op(kinto, item)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
        kinto.close()

    clients = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in clients:
        thread.start()
    barrier.wait(60)
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    for thread in clients:
        thread.join(max(0.0, deadline - time.monotonic()))
    wall = time.perf_counter() - started
    return Batch(list(latencies), wall)


def retried(ctx, label, send, attempts=5):
    """``send()`` again while Kinto answers 409 "please retry", as a client must."""
    for attempt in range(attempts):
        response = send()
        if response.status != 409 or attempt + 1 == attempts:
            return response
        ctx.count(f"{label} (409, retried)", "409")
        time.sleep(0.002 * (attempt + 1))
    return response  # pragma: no cover


def answer_op(ctx, collection, case):
    """The plugin: the reviewer POSTs SUCCEED to the record's stepfunction endpoint."""

    def op(kinto, item):
        record_id, _token = item
        path = f"{collection}/records/{record_id}/stepfunction"
        label = f"answer POST, {case}"
        response = retried(
            ctx, label, lambda: kinto.request("POST", path, {"answer": "SUCCEED"}, REVIEWER)
        )
        ctx.count(label, response.status)

    return op


def floor_op(ctx, collection, case):
    """The floor: the reviewer's PATCH of an unguarded field, then SendTaskSuccess with the
    record's token."""

    def op(kinto, item):
        record_id, token = item
        path = f"{collection}/records/{record_id}"
        body = {"data": {"decision": "SUCCEED"}}
        label = f"floor PATCH, {case}"
        response = retried(ctx, label, lambda: kinto.request("PATCH", path, body, REVIEWER))
        ctx.count(label, response.status)
        label = f"floor SendTaskSuccess, {case}"
        try:
            ctx.sfn.send_task_success(taskToken=token, output=OUTPUT)
            ctx.count(label, 200)
        except botocore.exceptions.ClientError as e:
            ctx.count(label, e.response.get("Error", {}).get("Code", "?"))
        except botocore.exceptions.BotoCoreError as e:
            ctx.count(label, type(e).__name__)

    return op


def alternating(rounds, measure):
    """``measure(kind)`` for the plugin and the floor in turn: P F, F P, P F... per round."""
    batches = {"plugin": [], "floor": []}
    for r in range(rounds):
        order = ("plugin", "floor") if r % 2 == 0 else ("floor", "plugin")
        for kind in order:
            batches[kind].append(measure(kind))
    return {kind: Summary.of(found) for kind, found in batches.items()}


def answer_batches(ctx, collection, concurrency, size, rounds, case):
    """Plugin and floor at one concurrency: {"plugin": Summary, "floor": Summary}."""
    ops = {"plugin": answer_op(ctx, collection, case), "floor": floor_op(ctx, collection, case)}

    def measure(kind):
        items = answerable_records(ctx, collection, size)
        return timed_batch(ctx.url, items, ops[kind], concurrency)

    return alternating(rounds, measure)


def answer_path(ctx, levels, sizes, rounds, warmup=5):
    """{concurrency: {"plugin": Summary, "floor": Summary}} on the manual_steps collection."""
    kinto = Kinto(ctx.url)
    ensure_collection(ctx, kinto, COLLECTION)
    answer_batches(ctx, COLLECTION, 1, warmup, 2, "warm-up")  # connections, caches: untimed
    return {
        c: answer_batches(ctx, COLLECTION, c, sizes[c], rounds, f"{c} client(s)") for c in levels
    }


# --- Growth ---------------------------------------------------------------------------------


def dashboard(ctx, collection, size, rounds):
    """The dashboard inbox's first page (20 steps waiting for the collection's author, who may
    answer them all), against a plain page of 20 records, as the same user."""

    def measure(kind):
        path = collection + PAGES[kind]

        def op(kinto, _item):
            response = kinto.get(path, ADMIN)
            ctx.count(f"{'inbox' if kind == 'plugin' else 'plain'} page GET", response.status)

        return timed_batch(ctx.url, range(size), op, 1)

    return alternating(rounds, measure)


def growth(ctx, sizes, batch, rounds, dashboard_at, dashboard_size, dashboard_rounds):
    """Answer p50s as the collection grows: {records: {"plugin":…, "floor":…}}, dashboard."""
    kinto = Kinto(ctx.url)
    ensure_collection(ctx, kinto, GROWTH_COLLECTION)
    results, page, fill_seconds = {}, None, {}
    for target in sizes:
        current = record_count(kinto, GROWTH_COLLECTION, ADMIN)
        fill_seconds[target] = fill(ctx, GROWTH_COLLECTION, target - current)
        results[target] = answer_batches(
            ctx, GROWTH_COLLECTION, 1, batch, rounds, f"growth {target:,} records"
        )
        if target == dashboard_at:
            page = dashboard(ctx, GROWTH_COLLECTION, dashboard_size, dashboard_rounds)
    return results, page, fill_seconds


def new_id():
    return str(uuid.uuid4())
