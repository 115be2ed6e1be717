"""The table: rows built from the measurements, printed as text and written as Markdown."""

import os
import platform
import socket
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple

from bench.processes import POOL_SIZE, ROOT, WAITRESS_THREADS
from bench.stats import percentile, ratio, verdict


# Targets (after the core work).
ANSWER_LATENCY_RATIO = 1.15  # plugin p50 and p95 at most this times the floor's
ANSWER_THROUGHPUT_RATIO = 0.90  # plugin throughput at least this times the floor's
WORKER_P95_EXTRA_MS = 200  # worker p95 at most this above the bare loop's
MEMORY_GROWTH = 1.10  # worker RSS after warm-up: at most this times the warm-up RSS
OUTBOX_RATIO = 1.5  # the outbox's pass beside many closed steps: at most this times none


class Row(NamedTuple):
    section: str
    backend: str
    case: str
    measure: str
    plugin: str
    baseline: str
    ratio: str
    target: str = ""
    result: str = ""


HEADERS = Row(
    "Section", "Backend", "Case", "Measure", "Plugin", "Baseline", "Ratio", "Target", "Result"
)


def ms(seconds):
    return "n/a" if seconds != seconds else f"{seconds * 1000:.1f} ms"


def per_second(value):
    return "n/a" if value != value else f"{value:.1f}/s"


def ratio_text(name, value):
    return f"{name} ratio n/a" if value != value else f"{name} ratio {value:.2f}"


# --- Rows -------------------------------------------------------------------------------------


def answer_rows(backend, results):
    rows = []
    for concurrency, found in results.items():
        plugin, floor = found["plugin"], found["floor"]
        clients = f"{concurrency} client{'s' if concurrency > 1 else ''}"
        case = f"{clients} (n={plugin.count}/{floor.count})"
        for name in ("p50", "p95"):
            value = ratio(getattr(plugin, name), getattr(floor, name))
            rows.append(
                Row(
                    "Answer (plugin / floor)",
                    backend,
                    case,
                    name,
                    ms(getattr(plugin, name)),
                    ms(getattr(floor, name)),
                    ratio_text(name, value),
                    f"<= {ANSWER_LATENCY_RATIO}",
                    verdict(value, at_most=ANSWER_LATENCY_RATIO),
                )
            )
        value = ratio(plugin.throughput, floor.throughput)
        rows.append(
            Row(
                "Answer (plugin / floor)",
                backend,
                case,
                "throughput",
                per_second(plugin.throughput),
                per_second(floor.throughput),
                ratio_text("throughput", value),
                f">= {ANSWER_THROUGHPUT_RATIO}",
                verdict(value, at_least=ANSWER_THROUGHPUT_RATIO),
            )
        )
    return rows


def latency_rows(backend, found):
    worker, bare = found["plugin"], found["floor"]
    case = f"1 poller (n={len(worker)}/{len(bare)})"
    rows = []
    for name, q in (("p50", 50), ("p95", 95)):
        w, b = percentile(worker, q), percentile(bare, q)
        target = result = ""
        if name == "p95":
            extra = (w - b) * 1000
            target = f"+{extra:.0f} ms <= +{WORKER_P95_EXTRA_MS} ms" if extra == extra else ""
            result = verdict(extra, at_most=WORKER_P95_EXTRA_MS)
        rows.append(
            Row(
                "Worker latency (start to readable / bare)",
                backend,
                case,
                name,
                ms(w),
                ms(b),
                ratio_text(name, ratio(w, b)),
                target,
                result,
            )
        )
    return rows


def throughput_rows(backend, results, tasks):
    rows = []
    for pollers, found in results.items():
        worker, bare = found["plugin"], found["floor"]
        rows.append(
            Row(
                "Worker throughput (worker / bare)",
                backend,
                f"{pollers} poller{'s' if pollers > 1 else ''}, {tasks:,} tasks"
                f" ({worker.tasks:,}/{bare.tasks:,} done)",
                "tasks/s",
                per_second(worker.rate),
                per_second(bare.rate),
                ratio_text("throughput", ratio(worker.rate, bare.rate)),
            )
        )
    return rows


def growth_rows(backend, results, fill_seconds):
    rows = []
    for size, found in results.items():
        plugin, floor = found["plugin"], found["floor"]
        rows.append(
            Row(
                "Growth: answer (plugin / floor)",
                backend,
                f"{size:,} records (fill {fill_seconds.get(size, 0):.1f} s, n={plugin.count})",
                "p50",
                ms(plugin.p50),
                ms(floor.p50),
                ratio_text("p50", ratio(plugin.p50, floor.p50)),
            )
        )
    return rows


def outbox_rows(backend, found):
    """The outbox's pass with ``closed`` closed steps against none (``bench/outbox.py``)."""
    closed = found["closed"]
    with_closed, without = found[closed], found[0]
    case = f"10 due, {closed:,} closed vs 0 closed (fill {found['fill']:.1f} s)"
    rows = []
    for measure, target in (("pass", True), ("query", True), ("old query", False)):
        value = ratio(with_closed[measure], without[measure])
        rows.append(
            Row(
                "Outbox (closed / none)",
                backend,
                case,
                measure,
                f"{with_closed[measure] * 1000:.3f} ms",
                f"{without[measure] * 1000:.3f} ms",
                ratio_text(measure, value),
                f"<= {OUTBOX_RATIO}" if target else "(the previous version's query)",
                verdict(value, at_most=OUTBOX_RATIO) if target else "",
            )
        )
    return rows


def status_rows(backend, found):
    """Status-change events applied per second against a bare SQS receive loop
    (``bench/status_events.py``)."""
    rows = []
    for kind, case in (("plugin", "applied (one write each)"), ("duplicates", "duplicates")):
        rows.append(
            Row(
                "Status events (worker / bare receive loop)",
                backend,
                f"{found['count']:,} events, {case}",
                "events/s",
                per_second(found[kind]),
                per_second(found["bare"]),
                ratio_text("throughput", ratio(found[kind], found["bare"])),
            )
        )
    return rows


def dashboard_rows(backend, found, size):
    page, plain = found["plugin"], found["floor"]
    return [
        Row(
            "Growth: dashboard inbox (first page / plain page)",
            backend,
            f"{size:,} records, first 20 waiting (n={page.count})",
            name,
            ms(getattr(page, name)),
            ms(getattr(plain, name)),
            ratio_text(name, ratio(getattr(page, name), getattr(plain, name))),
        )
        for name in ("p50", "p95")
    ]


def memory_rows(backend, memory, tasks, warmup):
    peak = ratio(memory.peak_kib, memory.warm_kib)
    return [
        Row(
            "Worker RSS (peak after warm-up / at warm-up)",
            backend,
            f"{tasks:,} tasks, 4 pollers ({memory.tasks:,} stored in {memory.seconds:.0f} s),"
            f" warm-up {warmup:,}",
            "RSS",
            f"{memory.peak_kib / 1024:.1f} MiB (end {memory.end_kib / 1024:.1f})",
            f"{memory.warm_kib / 1024:.1f} MiB",
            ratio_text("RSS", peak),
            f"<= {MEMORY_GROWTH}",
            verdict(peak, at_most=MEMORY_GROWTH),
        )
    ]


def shutdown_rows(backend, shutdown):
    exited = "exit 0" if shutdown.exit_code == 0 else f"exit {shutdown.exit_code}"
    if shutdown.exit_code is None:
        exited = "killed"
    return [
        Row(
            "Worker shutdown (SIGTERM to exit / poll left)",
            backend,
            f"4 pollers in a {shutdown.poll_seconds:g} s long poll, {exited}",
            "seconds",
            f"{shutdown.seconds:.2f} s",
            f"{shutdown.poll_left:.2f} s",
            ratio_text("shutdown", ratio(shutdown.seconds, shutdown.poll_left)),
        )
    ]


SECTIONS = (
    "Answer (plugin / floor)",
    "Growth: answer (plugin / floor)",
    "Growth: dashboard inbox (first page / plain page)",
    "Worker latency (start to readable / bare)",
    "Worker throughput (worker / bare)",
    "Worker RSS (peak after warm-up / at warm-up)",
    "Worker shutdown (SIGTERM to exit / poll left)",
    "Outbox (closed / none)",
    "Status events (worker / bare receive loop)",
)


def ordered(rows, backends):
    """Rows by section, then backend (each backend's in the order measured)."""
    return sorted(rows, key=lambda r: (SECTIONS.index(r.section), backends.index(r.backend)))


def error_rows(tally):
    rows = []
    for (backend, key), (total, bad) in tally.failures().items():
        listed = ", ".join(f"{status} x{n}" for status, n in sorted(bad.items(), key=str))
        rows.append((backend, key, f"{total:,}", listed or "none"))
    return rows


# --- Machine and versions -----------------------------------------------------------------------


def package_version(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def git(*args):
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib():
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def plugin_description(label):
    import stepfunction

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "stepfunction", "setup.py")
    where = Path(stepfunction.__file__).resolve().parent
    text = f"stepfunction {getattr(stepfunction, '__version__', '?')}"
    if where == ROOT / "stepfunction":
        text += f", the working tree at git {commit}"
        text += " with uncommitted changes to stepfunction/" if dirty else ""
    else:
        text += f" imported from {where} (the working tree is at git {commit})"
    return text + (f"; {label}" if label else "")


def environment(postgresql_version, label=None):
    return {
        "Date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Host": socket.gethostname(),
        "Machine": f"{os.cpu_count()} cores ({cpu_model()}), {memory_gib():.1f} GiB memory, "
        f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Kinto": package_version("kinto"),
        "boto3": package_version("boto3"),
        "moto": package_version("moto"),
        "waitress": package_version("waitress"),
        "Plugin": plugin_description(label),
        "PostgreSQL": postgresql_version or "not used",
    }


# --- Output -----------------------------------------------------------------------------------


def text_table(headers, rows):
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(headers, rows):
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *map(line, rows)])


METHOD = (
    f"Kinto runs under waitress ({WAITRESS_THREADS} threads) from a generated .ini "
    "(`kinto start --ini`): Basic auth, `kinto.includes = stepfunction kinto.plugins.history "
    f"bench.filler`, PostgreSQL pool {POOL_SIZE} (at least one connection per thread, as the "
    "README sizes it); the local Step Functions is `bench/emulator.py` (the package's "
    "Emulator, in a process of its own). The same server serves the plugin and the floor; "
    "16 and 32 threads (pool as large) were tried on a 2-core machine: neither side gained "
    f"consistently, so both stay at {WAITRESS_THREADS}.",
    "Answer: the plugin is the reviewer's `POST …/records/{id}/stepfunction "
    '{"answer": "SUCCEED"}` on a fresh record that the admin (the collection\'s writer) '
    "posted with the token of a waiting `.waitForTaskToken` execution and write for the "
    'reviewer; the floor is the reviewer\'s `PATCH {"data": {"decision": "SUCCEED"}}` of such '
    "a record plus a direct SendTaskSuccess with its token. A 409 is retried (5 attempts), "
    "inside the timing. Batches alternate (P F, F P, ...); each is prepared just before it, "
    "untimed, on a reset emulator. Throughput: requests / wall time of the batches.",
    "Worker latency: StartExecution to the first 200 of the reviewer's GET of the record "
    "(polled every 10 ms); baseline: StartExecution to the task received by a bare boto3 "
    "GetActivityTask loop (a thread of the benchmark). Worker throughput: the tasks are queued "
    "first, then the worker drains them (memory: pollers inside Kinto, "
    "`stepfunction.worker_in_process`; PostgreSQL: `stepfunction-worker`); rate from the first "
    "to the last record's `last_modified`; baseline: as many bare GetActivityTask threads, "
    "from the first to the last task received.",
    "Growth: filler records are written straight into storage (bench/filler.py: no ACL, no "
    "history, no private task objects; one in ten UNANSWERED). Dashboard inbox: the author's "
    "`GET …/stepfunction/inbox?_limit=20` (the steps waiting, filtered and paged by the "
    "server) against Kinto's `GET …/records?_limit=20`, as the same user.",
    "Worker RSS: `stepfunction-worker` with 4 pollers on PostgreSQL, fed as it goes (at most "
    "300 tasks waiting), VmRSS from /proc every 0.5 s. Shutdown: SIGTERM 2 s into the "
    "pollers' long poll (an emulator of its own with that poll time); baseline: when a bare "
    "GetActivityTask started with them returns.",
    "The machine is shared: its load average is given above; figures from one run are noisy, "
    "compare ratios rather than milliseconds.",
)


def load_average():
    try:
        with open("/proc/loadavg") as loadavg:
            return " ".join(loadavg.read().split()[:3])
    except OSError:
        return "unknown"


def markdown(title, env, plan_lines, rows, errors, notes):
    out = [f"# {title}", ""]
    out += [f"- **{key}**: {value}" for key, value in env.items()]
    out += ["", "## Plan", ""] + [f"- {line}" for line in plan_lines]
    out += ["", "## Method", ""] + [f"- {line}" for line in METHOD]
    out += ["", "## Results", "", markdown_table(HEADERS, rows)]
    out += ["", "## Responses per request class (non-2xx)", ""]
    out += [markdown_table(("Backend", "Request class", "Requests", "Non-2xx"), errors)]
    if notes:
        out += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(out) + "\n"
