"""Benchmarks of the answer endpoint: `make bench`.

- ``repeat``: answering a record that already holds that answer. No AWS call: this is what
  Kinto and the plugin cost per request (authentication, permission check, the record's lock,
  its read in a transaction of its own).
- ``callback``: answering a fresh callback-token record, SendTaskSuccess to the local Step
  Functions included (each round gets its own waiting execution, prepared outside the timing).
"""

import gc
import tracemalloc

from tests.conftest import ADMIN, REVIEWER, user_id


def make_record(app, collection, data):
    body = {"data": data, "permissions": {"write": [user_id(app, REVIEWER)]}}
    return app.post_json(f"{collection}/records", body, headers=ADMIN).json["data"]["id"]


def test_repeat(benchmark, app, collection, workflows):
    queue = workflows.queue()
    workflows.start(workflows.callback_machine(queue))
    token = workflows.receive_token(queue)["TaskToken"]
    record_id = make_record(app, collection, {"taskToken": token})
    url = f"{collection}/records/{record_id}/stepfunction"
    app.post_json(url, {"answer": "SUCCEED"}, headers=REVIEWER)

    response = benchmark(app.post_json, url, {"answer": "SUCCEED"}, headers=REVIEWER)

    assert response.json["data"]["status"] == "SUCCEED"


def test_callback(benchmark, app, collection, workflows):
    queue = workflows.queue()
    machine = workflows.callback_machine(queue)

    def waiting_step():
        workflows.start(machine)
        token = workflows.receive_token(queue)["TaskToken"]
        url = f"{collection}/records/{make_record(app, collection, {'taskToken': token})}"
        return (url + "/stepfunction", {"answer": "SUCCEED"}), {"headers": REVIEWER}

    benchmark.pedantic(app.post_json, setup=waiting_step, rounds=30)


def test_memory_per_answer(benchmark, app, collection):
    """Memory the repeat path keeps after 500 answers (tracemalloc), in the extra info."""
    record_id = make_record(app, collection, {"taskToken": "t" * 40, "status": "SUCCEED"})
    url = f"{collection}/records/{record_id}/stepfunction"
    for _ in range(50):  # warm caches before measuring
        app.post_json(url, {"answer": "SUCCEED"}, headers=REVIEWER)

    def answers():
        tracemalloc.start()
        gc.collect()
        before = tracemalloc.take_snapshot()
        for _ in range(500):
            app.post_json(url, {"answer": "SUCCEED"}, headers=REVIEWER)
        gc.collect()
        after = tracemalloc.take_snapshot()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        retained = sum(s.size_diff for s in after.compare_to(before, "filename"))
        return retained, peak

    retained, peak = benchmark.pedantic(answers, rounds=1)
    benchmark.extra_info["retained_bytes_after_500"] = retained
    benchmark.extra_info["peak_traced_bytes"] = peak
    assert retained < 2 * 1024 * 1024
