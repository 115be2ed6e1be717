"""The worker: latency to a readable record, throughput, memory over a long run, shutdown.

The baseline is a bare boto3 loop calling GetActivityTask on the same emulator, in the
benchmark's process: what receiving the tasks costs, with nothing stored.
"""

import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import NamedTuple

from bench.httpclient import ADMIN, REVIEWER, Kinto
from bench.processes import LocalStepFunctions, free_port, start_kinto, start_worker, write_ini
from bench.workload import (
    BUCKET,
    ensure_collection,
    new_id,
    record_count,
    sfn_client,
    workflows_on,
)


TASK_TIMEOUT = 180  # seconds an activity task of a throughput run may wait
POLL_GET_SECONDS = 0.01  # between the reviewer's GETs while waiting for a record


class Host(NamedTuple):
    """A running worker: the process to stop, and the Kinto where its records are read."""

    service: object
    url: str
    count_auth: str  # who may count the records of a collection the worker created


class Workers:
    """Starts workers for one backend: in-process pollers of a Kinto server on the memory
    backend (one server per configuration), ``stepfunction-worker`` on PostgreSQL."""

    def __init__(self, ctx, processes, tmp, postgresql_url):
        self.ctx = ctx
        self.processes = processes
        self.tmp = Path(tmp)
        self.postgresql_url = postgresql_url
        self.count = 0

    def start(self, name, activity, pollers, collection, emulator_url=None):
        self.count += 1
        settings = {
            "stepfunction.activities": activity,
            "stepfunction.pollers_per_activity": pollers,
            "stepfunction.collection": collection,
        }
        ini = self.tmp / f"{self.ctx.backend}-{name}-{self.count}.ini"
        port = free_port()
        emulator_url = emulator_url or self.ctx.emulator_url
        if self.ctx.backend == "memory":
            settings["stepfunction.worker_in_process"] = "true"
            write_ini(ini, port, "memory", None, emulator_url, self.ctx.fill_secret, **settings)
            service, url = start_kinto(self.processes, f"kinto-memory-{name}", ini)
            # The worker creates its bucket with no owner: the admin can't list it, the
            # reviewer can (the records are shared with them).
            return Host(service, url, REVIEWER)
        write_ini(
            ini,
            port,
            "postgresql",
            self.postgresql_url,
            emulator_url,
            self.ctx.fill_secret,
            **settings,
        )
        service = start_worker(self.processes, f"worker-{name}", ini)
        return Host(service, self.ctx.url, ADMIN)


def step_input(ctx, record_id=None):
    data = {"subject": "Bench step"}
    if record_id:
        data["id"] = record_id
    return {"data": data, "permissions": {"write": [ctx.reviewer]}}


class BarePoller:
    """Threads calling GetActivityTask in a loop; the receipt time of every task."""

    def __init__(self, emulator_url, activity, threads, expected=None):
        self.activity = activity
        self.expected = expected
        self.receipts = queue.Queue()
        self.received = 0
        self.errors = 0
        self.first = self.last = None
        self.done = threading.Event()
        self.lock = threading.Lock()
        # Clients built here: building them concurrently from one session is not thread-safe.
        clients = [sfn_client(emulator_url) for _ in range(threads)]
        self.threads = [
            threading.Thread(target=self.poll, args=(c,), daemon=True) for c in clients
        ]

    def start(self):
        for thread in self.threads:
            thread.start()
        return self

    def stop(self):
        self.done.set()  # the threads end after their current poll (daemons: not joined)

    def poll(self, client):
        while not self.done.is_set():
            try:
                task = client.get_activity_task(activityArn=self.activity, workerName="bare")
            except Exception:
                with self.lock:
                    self.errors += 1
                time.sleep(0.1)
                continue
            if not task.get("taskToken"):
                continue
            now = time.perf_counter()
            self.receipts.put(now)
            with self.lock:
                self.received += 1
                self.first = self.first or now
                self.last = now
                if self.expected and self.received >= self.expected:
                    self.done.set()


def start_executions(ctx, machine, count, payload):
    """Executions that will wait on an activity task (left waiting: nobody answers them)."""
    ctx.emulator.left_waiting += count
    ctx.emulator.start_many(machine, count, payload)


# --- Latency ----------------------------------------------------------------------------------


def worker_latency(ctx, workers, samples, block=5, warmup=2, timeout=10):
    """Seconds from StartExecution to the record readable by the reviewer (worker, 1 poller),
    or to the task received (bare loop, 1 thread): {"plugin": [...], "floor": [...]}."""
    ctx.emulator.fresh()
    wf = ctx.workflows
    worker_activity, bare_activity = wf.activity(), wf.activity()
    worker_machine = wf.activity_machine(worker_activity, timeout=300)
    bare_machine = wf.activity_machine(bare_activity, timeout=300)
    collection = f"{BUCKET}/collections/worker_latency"
    host = workers.start("latency", worker_activity, 1, "worker_latency")
    kinto = Kinto(host.url)
    ensure_collection(ctx, kinto, collection)
    bare = BarePoller(ctx.emulator_url, bare_activity, 1).start()
    time.sleep(0.5)  # both pollers in their long poll

    def worker_sample():
        record_id = new_id()
        path = f"{collection}/records/{record_id}"
        started = time.perf_counter()
        wf.start(worker_machine, step_input(ctx, record_id))
        while time.perf_counter() - started < timeout:
            response = kinto.get(path, REVIEWER)
            if response.status == 200:
                ctx.count("worker record GET (once there)", 200)
                return time.perf_counter() - started
            time.sleep(POLL_GET_SECONDS)
        ctx.count("worker record GET (once there)", "timeout")
        return None

    def bare_sample():
        started = time.perf_counter()
        wf.start(bare_machine, step_input(ctx))
        try:
            return bare.receipts.get(timeout=timeout) - started
        except queue.Empty:
            ctx.count("bare GetActivityTask", "timeout")
            return None

    try:
        for _ in range(warmup):
            worker_sample(), bare_sample()
        found = {"plugin": [], "floor": []}
        runs = {"plugin": worker_sample, "floor": bare_sample}
        for r in range(max(1, samples // block)):
            for kind in ("plugin", "floor") if r % 2 == 0 else ("floor", "plugin"):
                found[kind] += [runs[kind]() for _ in range(block)]
        return {kind: [x for x in values if x is not None] for kind, values in found.items()}
    finally:
        bare.stop()
        host.service.stop()


# --- Throughput -------------------------------------------------------------------------------


def wait_records(kinto, collection, auth, expected, timeout, stall=30):
    """Wait until ``expected`` records are there, or none came for ``stall`` seconds."""
    deadline = time.monotonic() + timeout
    count, changed = 0, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - changed < stall:
        now = record_count(kinto, collection, auth)
        if now != count:
            count, changed = now, time.monotonic()
        if count >= expected:
            break
        time.sleep(0.25)
    return count


def stored_span(kinto, collection, auth):
    """Milliseconds between the first and the last record's last_modified."""
    stamps = []
    for sort in ("last_modified", "-last_modified"):
        response = kinto.get(f"{collection}/records?_sort={sort}&_limit=1", auth)
        stamps.append(response.json()["data"][0]["last_modified"])
    return stamps[1] - stamps[0]


class Throughput(NamedTuple):
    tasks: int  # tasks that were handled (records stored / tasks received)
    rate: float  # per second, from the first to the last one


def worker_throughput(ctx, workers, pollers, tasks):
    """Tasks queued first, then the worker started: records stored per second."""
    ctx.emulator.fresh()
    wf = ctx.workflows
    activity = wf.activity()
    machine = wf.activity_machine(activity, timeout=TASK_TIMEOUT)
    start_executions(ctx, machine, tasks, step_input(ctx))
    name = f"throughput_{pollers}_{new_id()[:8]}"
    host = workers.start(f"throughput-{pollers}", activity, pollers, name)
    try:
        kinto = Kinto(host.url)
        collection = f"{BUCKET}/collections/{name}"
        count = wait_records(kinto, collection, host.count_auth, tasks, TASK_TIMEOUT - 20)
        if count < tasks:
            ctx.count(f"worker records stored ({pollers} pollers)", "missing")
        if count < 2:
            return Throughput(count, float("nan"))
        span = stored_span(kinto, collection, host.count_auth) / 1000
        return Throughput(count, (count - 1) / span if span > 0 else float("nan"))
    finally:
        host.service.stop()


def bare_throughput(ctx, pollers, tasks):
    """Tasks queued first, then ``pollers`` bare threads: tasks received per second."""
    ctx.emulator.fresh()
    wf = ctx.workflows
    activity = wf.activity()
    machine = wf.activity_machine(activity, timeout=TASK_TIMEOUT)
    start_executions(ctx, machine, tasks, step_input(ctx))
    bare = BarePoller(ctx.emulator_url, activity, pollers, expected=tasks).start()
    deadline, seen, changed = time.monotonic() + TASK_TIMEOUT - 20, 0, time.monotonic()
    while not bare.done.wait(0.25) and time.monotonic() < deadline:
        if bare.received != seen:
            seen, changed = bare.received, time.monotonic()
        if time.monotonic() - changed > 30:
            break
    bare.stop()
    for _ in range(bare.errors):
        ctx.count(f"bare GetActivityTask ({pollers} pollers)", "error")
    if bare.received < tasks:
        ctx.count(f"bare tasks received ({pollers} pollers)", "missing")
    if bare.received < 2:
        return Throughput(bare.received, float("nan"))
    return Throughput(bare.received, (bare.received - 1) / (bare.last - bare.first))


def throughput(ctx, workers, pollers_list, tasks):
    """{pollers: {"plugin": Throughput, "floor": Throughput}}, worker and bare alternating."""
    results = {}
    for i, pollers in enumerate(pollers_list):
        results[pollers] = {}
        for kind in ("plugin", "floor") if i % 2 == 0 else ("floor", "plugin"):
            if kind == "plugin":
                results[pollers][kind] = worker_throughput(ctx, workers, pollers, tasks)
            else:
                results[pollers][kind] = bare_throughput(ctx, pollers, tasks)
    return results


# --- Memory -----------------------------------------------------------------------------------


class Memory(NamedTuple):
    tasks: int
    warm_kib: int  # RSS once ``warmup`` tasks are stored
    peak_kib: int  # highest RSS after that
    end_kib: int
    seconds: float


def worker_memory(ctx, workers, tasks, warmup, pollers=4, outstanding=300, chunk=100):
    """The worker's RSS (from /proc) while it stores ``tasks`` tasks, fed as it goes.

    The tasks time out 30 s after they were stored, so that the emulator does not keep
    thousands of executions (each of them threads) waiting.
    """
    ctx.emulator.fresh()
    wf = ctx.workflows
    activity = wf.activity()
    machine = wf.activity_machine(activity, timeout=30)
    name = f"memory_{new_id()[:8]}"
    host = workers.start("memory", activity, pollers, name)
    kinto = Kinto(host.url)
    collection = f"{BUCKET}/collections/{name}"
    samples = []  # (records stored, RSS KiB)
    stop = threading.Event()

    def sample():
        watcher = Kinto(host.url)
        while not stop.wait(0.5):
            rss = host.service.rss_kib()
            if rss is None:
                return
            samples.append((record_count(watcher, collection, host.count_auth), rss))

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    try:
        sampler.start()
        fed = 0
        deadline = started + max(120, tasks / 5)
        while fed < tasks and time.monotonic() < deadline:
            stored = samples[-1][0] if samples else 0
            if fed - stored >= outstanding:
                time.sleep(0.2)
                continue
            batch = min(chunk, tasks - fed)
            start_executions(ctx, machine, batch, step_input(ctx))
            fed += batch
        stored = wait_records(kinto, collection, host.count_auth, fed, 120)
        time.sleep(1)  # one more sample once everything is stored
    finally:
        stop.set()
        sampler.join(5)
        host.service.stop()
    after = [rss for count, rss in samples if count >= warmup]
    if not after:
        return Memory(stored, 0, 0, 0, time.monotonic() - started)
    return Memory(stored, after[0], max(after), after[-1], time.monotonic() - started)


# --- Shutdown ---------------------------------------------------------------------------------


class Shutdown(NamedTuple):
    seconds: float  # SIGTERM to exit (or to the kill, when it did not exit in time)
    poll_left: float  # when the bare poll started with the worker's polls returned, after SIGTERM
    exit_code: int | None
    poll_seconds: float


def worker_shutdown(ctx, workers, processes, poll_seconds, pollers=4, into_poll=2.0):
    """SIGTERM to ``stepfunction-worker`` while its pollers wait in a long poll (an emulator of
    its own, with polls of ``poll_seconds``); a bare poll started with theirs is the yardstick.
    """
    emulator = LocalStepFunctions(processes, poll_seconds, name="emulator-shutdown")
    url = emulator.url
    try:
        activity = workflows_on(url).activity()
        host = workers.start("shutdown", activity, pollers, "worker_shutdown", emulator_url=url)
        probe_client = sfn_client(url)
        returned = []

        def probe():
            probe_client.get_activity_task(activityArn=activity, workerName="probe")
            returned.append(time.perf_counter())

        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        time.sleep(into_poll)
        signalled = time.perf_counter()
        host.service.process.send_signal(signal.SIGTERM)
        try:
            code = host.service.process.wait(poll_seconds + 20)
        except subprocess.TimeoutExpired:
            code = None
        exited = time.perf_counter()
        host.service.stop()
        thread.join(max(0.0, poll_seconds + 5 - (time.perf_counter() - signalled)))
        poll_end = returned[0] if returned else float("nan")
        return Shutdown(exited - signalled, poll_end - signalled, code, poll_seconds)
    finally:
        emulator.stop()
