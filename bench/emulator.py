"""The benchmark's local Step Functions: ``stepfunction.testing.Emulator`` in its own process.

``python bench/emulator.py --port 0 --poll-seconds 10`` prints ``READY <port>`` once it listens
and runs until SIGTERM or SIGINT.

One change from ``python -m stepfunction.testing``: moto's interpreter builds a new boto3
client for every message a ``.waitForTaskToken`` state sends to SQS (tens of milliseconds of
CPU each); here it builds one per region and reuses it. Only the preparation of callback
tokens goes through that code: none of the requests the benchmark times does.
"""

import argparse
import signal
import threading

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sqs,
)

from stepfunction.testing import Emulator


def reuse_sqs_clients():
    build = state_task_service_sqs.boto_client_for
    clients = {}
    lock = threading.Lock()

    def boto_client_for(region, service, state_credentials=None):
        with lock:
            if (region, service) not in clients:
                clients[region, service] = build(region, service, state_credentials)
            return clients[region, service]

    state_task_service_sqs.boto_client_for = boto_client_for


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    args = parser.parse_args()

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    reuse_sqs_clients()
    with Emulator(port=args.port, poll_seconds=args.poll_seconds) as emulator:
        print(f"READY {emulator.port}", flush=True)
        stopping.wait()


if __name__ == "__main__":
    main()
