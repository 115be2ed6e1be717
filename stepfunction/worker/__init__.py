"""The worker: every pending manual step becomes its own Kinto record.

Pollers long-poll GetActivityTask (``stepfunction.activities``, times
``stepfunction.pollers_per_activity``) and SQS ReceiveMessage (``stepfunction.queues``, fed by
``arn:aws:states:::sqs:sendMessage.waitForTaskToken`` states). Each task becomes a record of
``stepfunction.bucket``/``stepfunction.collection`` (``store``), from its input (``tasks``).
Run it with ``stepfunction-worker CONFIG.ini`` (``cli``) or inside the Kinto server with
``stepfunction.worker_in_process = true`` (``inprocess``).
"""

from stepfunction.worker.supervisor import Worker


__all__ = ["Worker"]
