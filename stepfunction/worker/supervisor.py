"""The worker's threads: one per poller (and one for heartbeats), restarted if they crash."""

import logging
import threading
import time

from stepfunction.schema import parse_arn
from stepfunction.worker.escalation import escalation_loop
from stepfunction.worker.heartbeats import heartbeat_loop
from stepfunction.worker.outbox import outbox_loop
from stepfunction.worker.pollers import poll_activity, poll_queue
from stepfunction.worker.status import poll_status_queue, reconcile_loop
from stepfunction.worker.store import RETRY_DELAYS, Store


logger = logging.getLogger(__name__)

# Back-off after a failed poll or a crashed loop: (first, longest) wait.
ERROR_BACKOFF = (1.0, 30.0)


class Worker:
    """The pollers of one process, as threads; ``stop()`` ends them.

    ``sqs_wait_seconds``: the SQS long-poll time (default: the setting); ``retry_delays``:
    the waits between attempts to store a task; ``error_backoff``: (first, longest) wait
    after a failed poll.
    """

    def __init__(
        self,
        registry,
        stop=None,
        retry_delays=RETRY_DELAYS,
        sqs_wait_seconds=None,
        error_backoff=ERROR_BACKOFF,
    ):
        self.registry = registry
        self.settings = registry.stepfunction_settings
        self.client = registry.stepfunction_client
        self.stop_event = stop or threading.Event()
        self.store = Store(registry, self.stop_event, retry_delays)
        if sqs_wait_seconds is None:
            sqs_wait_seconds = self.settings.sqs_wait_seconds
        self.sqs_wait_seconds = sqs_wait_seconds
        self.error_backoff = error_backoff
        self.threads = []

    def start(self, daemon=False):
        loops = []
        for arn in self.settings.activities:
            name = parse_arn(arn).name
            for i in range(self.settings.pollers_per_activity):
                loops.append((f"activity-{name}-{i + 1}", poll_activity, arn))
        for i, url in enumerate(self.settings.queues):
            loops.append((f"queue-{i + 1}", poll_queue, url))
        for i, url in enumerate(self.settings.status_queues):
            loops.append((f"status-{i + 1}", poll_status_queue, url))
        if self.settings.reconcile_seconds:
            loops.append(("reconcile", reconcile_loop, None))
        if self.settings.heartbeat_seconds:
            loops.append(("heartbeat", heartbeat_loop, None))
        if self.settings.mail_enabled:
            loops.append(("outbox", outbox_loop, None))
        loops.append(("escalation", escalation_loop, None))
        for name, loop, arg in loops:
            args = (self,) if arg is None else (self, arg)
            thread = threading.Thread(
                target=self._guard, args=(loop, *args), name=f"stepfunction-{name}", daemon=daemon
            )
            self.threads.append(thread)
            thread.start()
        logger.info(
            "stepfunction worker started: %d activity poller(s), %d queue poller(s), "
            "%d status queue(s), reconciliation %s, heartbeats %s, mail %s, "
            "storing into /buckets/%s/collections/%s",
            len(self.settings.activities) * self.settings.pollers_per_activity,
            len(self.settings.queues),
            len(self.settings.status_queues),
            f"every {self.settings.reconcile_seconds:g} s"
            if self.settings.reconcile_seconds
            else "off",
            f"every {self.settings.heartbeat_seconds:g} s"
            if self.settings.heartbeat_seconds
            else "off",
            "on" if self.settings.mail_enabled else "off",
            self.settings.bucket,
            self.settings.collection,
        )
        return self

    def stop(self, timeout=None):
        """Stop polling; returns whether every thread ended within ``timeout``."""
        self.stop_event.set()
        wake = getattr(self.registry, "stepfunction_outbox_wake", None)
        if wake is not None:
            wake.set()
        return self.join(timeout)

    def join(self, timeout=None):
        """Wait for every thread, ``timeout`` seconds in all; whether they all ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self.threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self.threads)

    def backoff(self, failures):
        """Wait after the n-th failure in a row (returns early when stopping)."""
        first, longest = self.error_backoff
        self.stop_event.wait(min(longest, first * 2 ** (failures - 1)))

    def _guard(self, loop, *args):
        """Run a loop; a bug in it is logged and the loop restarted, never silently lost."""
        failures = 0
        while not self.stop_event.is_set():
            try:
                loop(*args)
                return
            except Exception:
                failures += 1
                logger.exception("%s crashed; restarting it", threading.current_thread().name)
                self.backoff(failures)
