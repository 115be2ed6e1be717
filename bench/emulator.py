"""The benchmark's local Step Functions: ``stepfunction.testing.Emulator`` in its own process.

``python bench/emulator.py --port 0 --poll-seconds 10`` prints ``READY <port> <bulk port>``
once it listens, and runs until SIGTERM or SIGINT.

Two additions to ``python -m stepfunction.testing``, both for preparing work, never for what
the benchmark times:

- moto's interpreter builds a new boto3 client for every message a ``.waitForTaskToken``
  state sends to SQS (tens of milliseconds of CPU each); here it builds one per region.
- ``POST http://127.0.0.1:<bulk port>/start`` with ``{"stateMachineArn", "count", "input"}``
  starts that many executions in the emulator's process (as StartExecution does, without
  an HTTP request and a response each: about three times faster) and answers their ARNs.
"""

import argparse
import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sqs,
)
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

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


class BulkStart(BaseHTTPRequestHandler):
    def do_POST(self):
        try:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            arn = body["stateMachineArn"]
            _, _, _, region, account, *_ = arn.split(":")
            backend = stepfunctions_parser_backends[account][region]
            arns = [
                backend.start_execution(arn, None, body.get("input", "{}")).execution_arn
                for _ in range(int(body["count"]))
            ]
            status, answer = 200, {"executionArns": arns}
        except Exception as e:  # the benchmark says what went wrong
            status, answer = 400, {"error": f"{type(e).__name__}: {e}"}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    args = parser.parse_args()

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    reuse_sqs_clients()
    bulk = ThreadingHTTPServer(("127.0.0.1", 0), BulkStart)
    bulk.daemon_threads = True
    threading.Thread(target=bulk.serve_forever, daemon=True).start()
    try:
        with Emulator(port=args.port, poll_seconds=args.poll_seconds) as emulator:
            print(f"READY {emulator.port} {bulk.server_address[1]}", flush=True)
            stopping.wait()
    finally:
        bulk.shutdown()


if __name__ == "__main__":
    main()
