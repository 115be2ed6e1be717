"""The poll loops: GetActivityTask on an activity, ReceiveMessage on an SQS queue."""

import logging

from stepfunction.client import AwsError, UnknownActivity
from stepfunction.schema import parse_arn
from stepfunction.worker.tasks import Task, parse_message, payload_region, queue_region
from stepfunction.worker.tasks import worker_name as current_worker_name


logger = logging.getLogger(__name__)


def poll_activity(worker, activity_arn):
    name = current_worker_name()
    region = parse_arn(activity_arn).region
    failures = 0
    while not worker.stop_event.is_set():
        try:
            task = worker.client.get_activity_task(activity_arn, name)
        except AwsError as e:
            failures += 1
            level = logging.ERROR if isinstance(e, UnknownActivity) else logging.WARNING
            logger.log(level, "GetActivityTask on %s failed: %s", activity_arn, e)
            worker.backoff(failures)
            continue
        failures = 0
        if task is not None:
            worker.store.handle(Task(task.token, task.input, activity_arn, activity_arn, region))


def poll_queue(worker, queue_url, handle=None):
    """Long-poll an SQS queue and hand each message to ``handle`` (default: a task)."""
    handle = handle or handle_message
    region = queue_region(queue_url, worker.settings.aws_region)
    failures = 0
    while not worker.stop_event.is_set():
        try:
            messages = worker.client.receive_messages(queue_url, region, worker.sqs_wait_seconds)
        except AwsError as e:
            failures += 1
            logger.warning("ReceiveMessage on %s failed: %s", queue_url, e)
            worker.backoff(failures)
            continue
        failures = 0
        for message in messages:
            handle(worker, queue_url, region, message)


def handle_message(worker, queue_url, region, message):
    """Store the task a message carries, then delete the message (only then).

    A message that carries no task token is left on the queue: SQS delivers it again after
    its visibility timeout, and moves it to the queue's dead-letter queue, if one is
    configured, after ``maxReceiveCount`` deliveries.
    """
    message_id = message.get("MessageId", "?")
    parsed = parse_message(message)
    if parsed is None:
        logger.error(
            "message %s on %s has no TaskToken in a JSON body: left on the queue "
            "(redelivered, then dead-lettered if the queue has a redrive policy)",
            message_id,
            queue_url,
        )
        return
    token, payload = parsed
    task = Task(token, payload, queue_url, None, payload_region(payload, region))
    if not worker.store.handle(task):
        logger.warning("message %s on %s: left on the queue", message_id, queue_url)
        return
    try:
        worker.client.delete_message(queue_url, region, message["ReceiptHandle"])
    except AwsError as e:
        # Harmless: a redelivery finds the record already stored under the same id.
        logger.warning("DeleteMessage %s on %s failed: %s", message_id, queue_url, e)
