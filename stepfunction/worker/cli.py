"""``stepfunction-worker CONFIG.ini``: the worker as a process of its own, beside Kinto."""

import argparse
import configparser
import logging
import signal
import sys
import threading

from stepfunction.worker.supervisor import Worker


logger = logging.getLogger("stepfunction.worker")

# After ``stop_seconds``, how long a task a poll received at that very moment may still take
# to be stored before the process exits.
SETTLE_SECONDS = 5.0


def refusal(registry):
    """Why the worker can't run on this configuration, or None."""
    settings = registry.settings
    for kind in ("storage", "permission"):
        backend = str(settings.get(f"{kind}_backend", ""))
        if backend.endswith(".memory"):
            return (
                f"the {kind} backend is {backend}, which lives inside one process: a separate "
                "worker cannot share it. Use PostgreSQL, or set "
                "`stepfunction.worker_in_process = true` to run the pollers inside the Kinto "
                "server instead."
            )
    if not registry.stepfunction_settings.worker_configured:
        return (
            "nothing to do: set stepfunction.activities (activity ARNs) and/or "
            "stepfunction.queues (SQS queue URLs), stepfunction.status_queues (execution "
            "status events), or mail.default_sender to mail reviewers."
        )
    return None


def scrub_tokens(registry):
    """``--scrub-tokens``: 0 once every stored token is masked, 1 if a record could not be."""
    from stepfunction.worker.scrub_stored import scrub_stored

    counts = scrub_stored(registry)
    logger.info(
        "task tokens masked in %(records)d record(s) and %(history)d history entries; "
        "%(failed)d record(s) could not be rewritten",
        counts,
    )
    return 1 if counts["failed"] else 0


def unreadable(config):
    """Why ``config`` can't be read as an .ini file, in one line, or None."""
    try:
        with open(config, "rb") as f:
            f.read(1)
    except OSError as e:
        return f"cannot read {config}: {e.strerror}"
    return None


def setup_logging(config):
    import plaster
    from pyramid.paster import setup_logging as from_ini

    if "loggers" in plaster.get_loader(config, protocols=["wsgi"]).get_sections():
        from_ini(config)
    else:  # no logging sections: still one line a task, on stderr.
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )


def main(argv=None):
    """Poll until SIGTERM/SIGINT, then exit 0 within ``stepfunction.stop_seconds``."""
    parser = argparse.ArgumentParser(
        prog="stepfunction-worker",
        description="Turn pending AWS Step Functions manual steps into Kinto records.",
    )
    parser.add_argument("config", metavar="CONFIG.ini", help="the Kinto server's ini file")
    parser.add_argument(
        "--scrub-tokens",
        action="store_true",
        help="mask the task tokens that records stored by earlier versions hold, then exit",
    )
    args = parser.parse_args(argv)
    # A bad path or file: one line, as argparse reports a bad argument, not a traceback.
    problem = unreadable(args.config)
    if problem:
        parser.exit(2, f"{parser.prog}: error: {problem}\n")

    import kinto
    from plaster.exceptions import PlasterError
    from pyramid.paster import get_appsettings

    try:  # bad syntax or encoding, no [app:main]: one line too
        setup_logging(args.config)
        settings = get_appsettings(args.config)
    except (configparser.Error, LookupError, PlasterError, UnicodeDecodeError) as e:
        reason = " ".join(str(e).split())
        parser.exit(2, f"{parser.prog}: error: {args.config} is not a Kinto .ini file: {reason}\n")
    # The in-process pollers are the server's: this process runs its own.
    settings["stepfunction.worker_in_process"] = "false"
    registry = kinto.main({"__file__": args.config}, **settings).registry
    if args.scrub_tokens:
        return scrub_tokens(registry)
    problem = refusal(registry)
    if problem:
        logger.critical("stepfunction-worker: %s", problem)
        return 2

    stop = threading.Event()

    def on_signal(signum, frame):
        if not stop.is_set():
            logger.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)

    worker = Worker(registry, stop=stop).start(daemon=True)
    # Wake up regularly: signal handlers run on the main thread, between waits.
    while not stop.wait(1):
        pass
    if worker.join(registry.stepfunction_settings.stop_seconds):
        logger.info("stepfunction worker stopped")
        return 0
    # Pollers still in a long poll are left; one that was just handed a task stores it first.
    if not worker.store.wait_settled(SETTLE_SECONDS):
        logger.error("stepfunction worker stopped while a received task was being stored")
    logger.info("stepfunction worker stopped; long polls still in flight are left (see README)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
