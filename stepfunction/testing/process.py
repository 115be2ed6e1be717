"""The local Step Functions in a process of its own, for the long runs of tasks.

In the tests' process, the emulator shares the interpreter with Kinto, the worker and every
earlier test's waiting executions; in its own process it has a core and a clean state, and
stopping it ends all its executions at once.
"""

import os
import re
import subprocess
import sys
import threading
import time
from typing import Any, Self

import boto3


LISTENING = re.compile(r"listening on (http://\S+)")


class EmulatorProcess:
    """``python -m stepfunction.testing`` on a free port; ``client()`` as on ``Emulator``."""

    def __init__(self, poll_seconds: float = 1.0, start_timeout: float = 60.0):
        self.poll_seconds = poll_seconds
        self.start_timeout = start_timeout
        self.endpoint_url = ""
        self._process: subprocess.Popen | None = None

    def start(self) -> Self:
        command = [sys.executable, "-m", "stepfunction.testing", "--port", "0", "--no-preload"]
        command += ["--poll-seconds", str(self.poll_seconds)]
        self._process = subprocess.Popen(
            command,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + self.start_timeout
        seen = []
        while time.monotonic() < deadline:
            line = self._process.stderr.readline()
            if not line:
                break  # the process ended
            seen.append(line)
            match = LISTENING.search(line)
            if match:
                self.endpoint_url = match.group(1)
                # Its log goes on (a line per request): drain it, or the full pipe blocks it.
                threading.Thread(target=self._process.stderr.read, daemon=True).start()
                return self
        self.stop()
        raise RuntimeError("the local Step Functions did not start:\n" + "".join(seen[-20:]))

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self, region: str = "us-west-2", service: str = "stepfunctions", **kwargs: Any):
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )
