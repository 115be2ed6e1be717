"""Run the local Step Functions in the foreground: ``python -m stepfunction.testing``."""

import argparse
import logging
import signal
import threading

from stepfunction.testing.emulator import Emulator, preload


log = logging.getLogger("stepfunction.testing")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stepfunction.testing", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    parser.add_argument(
        "--preload",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="create the demo activity and state machines (default: yes)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=None,
        help="GetActivityTask long-poll time (default: $STEPFUNCTION_EMULATOR_POLL_SECONDS or 60)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    with Emulator(port=args.port, poll_seconds=args.poll_seconds, host=args.host) as emulator:
        if args.preload:
            for key, value in preload(emulator.client()).items():
                log.info("Preloaded %s: %s", key, value)
        log.info("Endpoint: %s (Ctrl-C to stop)", emulator.endpoint_url)
        stopping.wait()
        log.info("Stopping")


if __name__ == "__main__":
    main()
