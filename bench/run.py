"""Benchmarks of the stepfunction plugin: ``make bench``, or ``.venv/bin/python bench/run.py``.

Starts everything it needs on 127.0.0.1 (the local Step Functions, Kinto under waitress on
the memory backend and on PostgreSQL, the worker), measures, prints one table and writes it
to ``bench/results/<date>-<host>.md``. Every figure is compared with a baseline measured in
the same run, in alternating batches:

1. Answer path: the plugin's ``POST …/stepfunction`` against the floor (the reviewer's PATCH
   of the record plus a direct SendTaskSuccess), at 1, 8 and 32 concurrent clients.
2. Worker: StartExecution to the record readable by the reviewer, and tasks stored per second
   with 1, 4 and 16 pollers, against a bare boto3 GetActivityTask loop.
3. Growth: the answer with 1,000 to 100,000 records in the collection; the dashboard inbox's
   first page with 10,000; the worker's resident memory over a long run.
4. Shutdown: SIGTERM to the exit of ``stepfunction-worker`` while its pollers long-poll.
5. Outbox: a pass of the mail outbox over 10 due steps beside 100,000 closed ones (10,000 in
   ``--quick``) against the same pass beside none (``bench/outbox.py``, in this process).
6. Status events: execution status-change events applied per second (and duplicates, which
   write nothing) against a bare SQS receive loop (``bench/status_events.py``, in this process).

``--quick`` is a smoke run of about two minutes; the default run takes about ten; ``--full``
(about fifteen) runs the memory test over 10,000 tasks instead of 2,000, and the shutdown test
with AWS's 60 s long poll instead of 30 s.
PostgreSQL: ``$STEPFUNCTION_BENCH_POSTGRESQL_URL``, default
``postgresql://postgres@127.0.0.1:5432/test_h2`` (its ``public`` schema is dropped first).
"""

import argparse
import dataclasses
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path


# Run as a script: import the benchmark as the ``bench`` package of the repository, after
# whatever PYTHONPATH names (the repository comes last, so a PYTHONPATH copy of the plugin
# wins over the working tree's).
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE.parent)]

from bench import outbox, report, status_events, workers, workload  # noqa: E402
from bench.httpclient import Tally  # noqa: E402
from bench.processes import (  # noqa: E402
    LocalStepFunctions,
    Processes,
    free_port,
    migrate,
    reset_postgresql,
    start_kinto,
    write_ini,
)


DEFAULT_POSTGRESQL_URL = "postgresql://postgres@127.0.0.1:5432/test_h2"
RESULTS = HERE / "results"
LOG_PROBLEMS = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|Connection pool is full")


@dataclasses.dataclass(frozen=True)
class Plan:
    name: str
    budget_seconds: int  # phases that would start later are skipped (and said so)
    levels: tuple = (1, 8, 32)
    answer_batch: tuple = ((1, 25), (8, 40), (32, 96))  # records per batch, per concurrency
    answer_rounds: int = 4  # batches of each kind, alternating P F, F P...
    latency_samples: int = 30
    pollers: tuple = (1, 4, 16)
    throughput_tasks: int = 1000
    growth_sizes: tuple = (1000, 10000, 100000)
    growth_batch: int = 20
    growth_rounds: int = 2
    dashboard_at: int = 10000
    dashboard_batch: int = 20
    dashboard_rounds: int = 4
    memory_tasks: int = 2000
    memory_warmup: int = 500
    shutdown_poll: float = 30.0  # GetActivityTask's long poll is 60 s on AWS (--full)
    emulator_poll: float = 10.0  # the long poll of the main emulator (shortens idle polls)
    outbox_closed: int = 100000  # closed steps beside the outbox's 10 due ones
    status_events: int = 1000  # status-change events per round (3 rounds of each kind)

    def lines(self):
        sizes = ", ".join(f"{c} clients: {n}" for c, n in self.answer_batch)
        return [
            f"mode {self.name}; time budget {self.budget_seconds // 60} min",
            f"answer path: {self.answer_rounds} batches of each kind per concurrency, "
            f"records per batch ({sizes})",
            f"worker latency: {self.latency_samples} samples of each kind; throughput: "
            f"{self.throughput_tasks:,} tasks queued, then drained, per poller count",
            f"growth: {', '.join(f'{s:,}' for s in self.growth_sizes)} records, "
            f"{self.growth_rounds} batches of {self.growth_batch} per kind at 1 client; "
            f"dashboard at {self.dashboard_at:,}: {self.dashboard_rounds} x "
            f"{self.dashboard_batch} requests per kind",
            f"worker RSS: {self.memory_tasks:,} tasks, warm-up {self.memory_warmup:,}; "
            f"shutdown: {self.shutdown_poll:g} s long poll; emulator long poll "
            f"{self.emulator_poll:g} s elsewhere",
            f"outbox: 10 due steps beside {self.outbox_closed:,} closed ones, against none",
            f"status events: 3 rounds of {self.status_events:,} events per kind",
        ]


PLANS = {
    "quick": Plan(
        name="quick",
        budget_seconds=200,
        answer_batch=((1, 10), (8, 16), (32, 48)),
        answer_rounds=2,
        latency_samples=10,
        throughput_tasks=50,
        growth_sizes=(1000, 10000),
        growth_batch=8,
        dashboard_batch=10,
        dashboard_rounds=2,
        memory_tasks=200,
        memory_warmup=60,
        shutdown_poll=5.0,
        outbox_closed=10000,
        status_events=200,
    ),
    "default": Plan(name="default", budget_seconds=11 * 60),
    "full": Plan(
        name="full",
        budget_seconds=30 * 60,
        memory_tasks=10000,
        memory_warmup=1000,
        shutdown_poll=60.0,
    ),
}


class Run:
    """The rows, notes and response counts of one run; each phase's failure is a note."""

    def __init__(self, plan):
        self.plan = plan
        self.started = time.monotonic()
        self.rows = []
        self.notes = []
        self.tally = Tally()
        self.failed = False
        self.postgresql_version = None

    def elapsed(self):
        return time.monotonic() - self.started

    def phase(self, name, func, *args, **kwargs):
        if self.elapsed() > self.plan.budget_seconds:
            self.notes.append(f"{name}: skipped, the time budget was spent")
            return None
        log(f"{name}...")
        started = time.monotonic()
        try:
            return func(*args, **kwargs)
        except Exception as e:
            self.failed = True
            self.notes.append(f"{name}: failed: {type(e).__name__}: {str(e)[:500]}")
            traceback.print_exc()
            return None
        finally:
            log(f"{name}: {time.monotonic() - started:.1f} s")


START = time.monotonic()


def log(message):
    print(f"[{time.monotonic() - START:6.1f} s] {message}", file=sys.stderr, flush=True)


def run_backend(run, processes, tmp, backend, emulator, postgresql_url, secret):
    plan = run.plan
    emulator.fresh()
    ini = write_ini(
        tmp / f"{backend}.ini", free_port(), backend, postgresql_url, emulator.url, secret
    )
    if backend == "postgresql":
        run.postgresql_version = reset_postgresql(postgresql_url)
        migrate(processes, ini)
    # In this process, on the storage before Kinto serves it (the phase empties it after).
    mailed = run.phase(
        f"{backend}: outbox", outbox.outbox_growth, backend, postgresql_url, plan.outbox_closed
    )
    if mailed:
        run.rows += report.outbox_rows(backend, mailed)
    applied = run.phase(
        f"{backend}: status events",
        status_events.status_throughput,
        backend,
        postgresql_url,
        emulator.url,
        plan.status_events,
    )
    if applied:
        run.rows += report.status_rows(backend, applied)
    kinto, url = start_kinto(processes, f"kinto-{backend}", ini)
    ctx = workload.Context(backend, url, emulator, secret, run.tally)

    answers = run.phase(
        f"{backend}: answer path",
        workload.answer_path,
        ctx,
        plan.levels,
        dict(plan.answer_batch),
        plan.answer_rounds,
    )
    if answers:
        run.rows += report.answer_rows(backend, answers)

    grown = run.phase(
        f"{backend}: growth",
        workload.growth,
        ctx,
        plan.growth_sizes,
        plan.growth_batch,
        plan.growth_rounds,
        plan.dashboard_at,
        plan.dashboard_batch,
        plan.dashboard_rounds,
    )
    growth_rows = []
    if grown:
        results, page, fill_seconds = grown
        growth_rows = report.growth_rows(backend, results, fill_seconds)
        if page:
            growth_rows += report.dashboard_rows(backend, page, plan.dashboard_at)

    pool = workers.Workers(ctx, processes, tmp, postgresql_url)
    latency = run.phase(
        f"{backend}: worker latency", workers.worker_latency, ctx, pool, plan.latency_samples
    )
    if latency:
        run.rows += report.latency_rows(backend, latency)
    rates = run.phase(
        f"{backend}: worker throughput",
        workers.throughput,
        ctx,
        pool,
        plan.pollers,
        plan.throughput_tasks,
    )
    if rates:
        run.rows += report.throughput_rows(backend, rates, plan.throughput_tasks)
    run.rows += growth_rows

    if backend == "postgresql":
        memory = run.phase(
            f"{backend}: worker memory",
            workers.worker_memory,
            ctx,
            pool,
            plan.memory_tasks,
            plan.memory_warmup,
        )
        if memory:
            run.rows += report.memory_rows(backend, memory, plan.memory_tasks, plan.memory_warmup)
        shutdown = run.phase(
            f"{backend}: worker shutdown",
            workers.worker_shutdown,
            ctx,
            pool,
            processes,
            plan.shutdown_poll,
        )
        if shutdown:
            run.rows += report.shutdown_rows(backend, shutdown)
    kinto.stop()
    run.notes += ctx.notes


def first_problem(lines):
    """The first line that says what went wrong (a traceback's exception line)."""
    for i, line in enumerate(lines):
        if not LOG_PROBLEMS.search(line):
            continue
        if line.startswith("Traceback"):
            return next((x for x in lines[i + 1 :] if x and not x[0].isspace()), line)
        return line
    return ""


def scan_logs(run, log_dir):
    """Errors and tracebacks in the logs of the processes, as notes."""
    for path in sorted(Path(log_dir).glob("*.log")):
        text = path.read_text(errors="replace")
        found = LOG_PROBLEMS.findall(text)
        if found:
            first = first_problem(text.splitlines()).strip()[:240]
            kinds = ", ".join(f"{k} x{found.count(k)}" for k in sorted(set(found)))
            run.notes.append(f"log of {path.stem}: {kinds}; first: `{first}`")


def output_path(args, plan):
    if args.output:
        return Path(args.output)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())
    suffix = "" if plan.name == "default" else f"-{plan.name}"
    return RESULTS / f"{date}-{host}{suffix}.md"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a smoke run of about two minutes")
    mode.add_argument(
        "--full", action="store_true", help="the 10,000-task memory run, 60 s long polls"
    )
    parser.add_argument(
        "--backend", choices=("memory", "postgresql", "both"), default="both", help="default: both"
    )
    parser.add_argument("--output", help="the Markdown file (default: bench/results/DATE-HOST.md)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    parser.add_argument("--label", help="what was measured, for the results file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    plan = PLANS["quick" if args.quick else "full" if args.full else "default"]
    backends = ("memory", "postgresql") if args.backend == "both" else (args.backend,)
    postgresql_url = os.environ.get("STEPFUNCTION_BENCH_POSTGRESQL_URL", DEFAULT_POSTGRESQL_URL)
    # Ctrl-C (even when started with SIGINT ignored, as background jobs are) and SIGTERM
    # unwind: every process started is stopped on the way out.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    run = Run(plan)
    load_at_start = report.load_average()
    tmp = Path(tempfile.mkdtemp(prefix="stepfunction-bench-"))
    secret = secrets.token_hex(16)
    try:
        with Processes(tmp) as processes:
            emulator = LocalStepFunctions(processes, plan.emulator_poll)
            for backend in backends:
                run.phase(
                    f"{backend}",
                    run_backend,
                    run,
                    processes,
                    tmp,
                    backend,
                    emulator,
                    postgresql_url,
                    secret,
                )
    finally:
        scan_logs(run, tmp)
        if run.failed or args.keep_logs:
            log(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    rows = report.ordered(run.rows, backends)
    env = report.environment(run.postgresql_version, args.label)
    env["Run"] = f"{plan.name} mode, {run.elapsed() / 60:.1f} min, backends: {', '.join(backends)}"
    env["Load average"] = f"{load_at_start} at the start, {report.load_average()} at the end"
    errors = report.error_rows(run.tally)
    print()
    print(report.text_table(report.HEADERS, rows))
    print()
    print(report.text_table(("Backend", "Request class", "Requests", "Non-2xx"), errors))
    for note in run.notes:
        print(f"note: {note}")
    path = output_path(args, plan)
    path.parent.mkdir(parents=True, exist_ok=True)
    title = f"stepfunction benchmark, {env['Date']}, {env['Host']}"
    path.write_text(report.markdown(title, env, plan.lines(), rows, errors, run.notes))
    print(f"\nwritten to {path}")
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
