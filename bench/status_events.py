"""Status-change events applied per second, against a bare SQS receive loop.

In this process, on the backend's storage (as ``bench/outbox.py``): ``count`` execution
records RUNNING, and for each an EventBridge "Step Functions Execution Status Change" event
(SUCCEEDED) on an SQS queue of the benchmark's local Step Functions. Alternating, each round
on ``count`` fresh messages:

- bare: ReceiveMessage (10 at a time) and DeleteMessage of each, nothing else: the floor;
- plugin: the worker's own loop body (``handle_status_message``): parse, read the record,
  write the change through Kinto's Record resource (history sees it), close the steps of the
  execution (none here), then DeleteMessage;
- duplicates: the same events again, which change nothing (no write): a storm's cost.
"""

import json
import statistics
import time
import uuid

import boto3
import kinto

from bench.outbox import app_settings as outbox_settings
from stepfunction import records, transactions
from stepfunction.testing.mailbox import Mailbox
from stepfunction.worker import Worker
from stepfunction.worker.status import handle_status_message


ACCOUNT = "123456789012"
REGION = "us-west-2"
BUCKET, COLLECTION = "bench-status", "executions"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:Bench"
START = 1_700_000_000_000


def event(name, status):
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:Bench:{name}"
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": ACCOUNT,
            "time": "2026-11-29T12:00:00Z",
            "region": REGION,
            "resources": [arn],
            "detail": {
                "executionArn": arn,
                "stateMachineArn": MACHINE,
                "name": name,
                "status": status,
                "startDate": START,
                "stopDate": START + 1000 if status != "RUNNING" else None,
                "input": "{}",
                "output": '{"ok": true}' if status == "SUCCEEDED" else None,
                "error": None,
                "cause": None,
            },
        }
    )


def add_records(registry, names):
    def work(request):
        records.ensure_collection(request, BUCKET, COLLECTION)
        for name in names:
            data = {
                "id": name,
                "stateMachineArn": MACHINE,
                "executionArn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:Bench:{name}",
                "status": "RUNNING",
                "startDate": "2023-11-14T22:13:20.000+00:00",
            }
            records.write_record(
                request, BUCKET, COLLECTION, name, {"data": data, "permissions": {}}, create=True
            )

    for start in range(0, len(names), 500):
        transactions.commit(registry, lambda r, chunk=names[start : start + 500]: work(r))


def fill(sqs, queue_url, bodies):
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": body}
            for i, body in enumerate(bodies[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)


def drain(sqs, queue_url, count, handle):
    """Receive ``count`` messages, ``handle`` each; the seconds it took."""
    done = 0
    started = time.perf_counter()
    while done < count:
        reply = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in reply.get("Messages", []):
            handle(message)
            done += 1
    return time.perf_counter() - started


def status_throughput(backend, postgresql_url, emulator_url, count=500, rounds=3):
    """``{"count", "bare": events/s, "plugin": events/s, "duplicates": events/s}`` (medians)."""
    sqs = boto3.client(
        "sqs",
        region_name=REGION,
        endpoint_url=emulator_url,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    queue_url = sqs.create_queue(QueueName=f"bench-status-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    with Mailbox() as mailbox:
        settings = outbox_settings(backend, postgresql_url, mailbox)
        settings.pop("mail.default_sender")
        settings.update(
            {
                "stepfunction.aws_endpoint_url": emulator_url,
                "stepfunction.status_queues": queue_url,
                "stepfunction.executions": f"{BUCKET}/{COLLECTION}",
                "stepfunction.worker_in_process": "false",
            }
        )
        registry = kinto.main({}, **settings).registry
        for store in (registry.storage, registry.permission, registry.cache):
            store.initialize_schema()
        try:
            worker = Worker(registry)  # not started: the benchmark drives its loop body

            def bare(message):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

            def plugin(message):
                assert handle_status_message(worker, queue_url, REGION, message)

            rates = {"bare": [], "plugin": [], "duplicates": []}
            for round_ in range(rounds):
                names = [f"e{round_}-{i}" for i in range(count)]
                add_records(registry, names)
                bodies = [event(name, "SUCCEEDED") for name in names]
                for kind, handle in (("bare", bare), ("plugin", plugin), ("duplicates", plugin)):
                    fill(sqs, queue_url, bodies)
                    rates[kind].append(count / drain(sqs, queue_url, count, handle))
            stored = registry.storage.list_all(
                resource_name="record", parent_id=records.collection_uri(BUCKET, COLLECTION)
            )
            assert all(r["status"] == "SUCCEEDED" for r in stored), "an event was not applied"
            return {"count": count, **{k: statistics.median(v) for k, v in rates.items()}}
        finally:
            sqs.delete_queue(QueueUrl=queue_url)
            for store in (registry.storage, registry.permission, registry.cache):
                store.flush()
