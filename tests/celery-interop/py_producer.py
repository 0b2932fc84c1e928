"""Sends one workload to the TypeScript worker (tasks named ts.*) and prints
its outcome as one JSON line: {"value": …} or {"error": {"type", "message"}}.
Usage: py_producer.py single|fail|chain|group|chord|kwargs|failing-chord"""
import json
import sys

from celery import chain, chord, group

from celery_tasks import app

TIMEOUT = 30


def sig(name, *args, **kwargs):
    return app.signature(name, args=args, kwargs=kwargs)


def run(workload):
    if workload == "single":
        return app.send_task("ts.add", args=(2, 3)).get(timeout=TIMEOUT)
    if workload == "fail":
        return app.send_task("ts.fail", args=("broken on purpose",)).get(timeout=TIMEOUT)
    if workload == "kwargs":
        return app.send_task("ts.describe", args=("ada",), kwargs={"greeting": "hi"}).get(timeout=TIMEOUT)
    if workload == "chain":
        return chain(sig("ts.add", 1, 1), sig("ts.add", 2), sig("ts.mul", 10)).apply_async().get(timeout=TIMEOUT)
    if workload == "group":
        return group(sig("ts.add", i, i) for i in range(4)).apply_async().get(timeout=TIMEOUT)
    if workload == "chord":
        return chord([sig("ts.mul", i, i) for i in range(1, 5)], sig("ts.tsum")).apply_async().get(timeout=TIMEOUT)
    if workload == "failing-chord":
        sent = chord([sig("ts.add", 1, 1), sig("ts.fail", "member broke")], sig("ts.tsum")).apply_async()
        # The body's own result, not its parents' (get() on the chord's handle re-raises the member's error first).
        return app.AsyncResult(sent.id).get(timeout=TIMEOUT)
    if workload == "failing-chain":
        return chain(sig("ts.add", 1, 1), sig("ts.fail", "step broke"), sig("ts.mul", 10)).apply_async().get(timeout=TIMEOUT)
    if workload == "retry":
        return app.send_task("ts.retry-once", args=(7,)).get(timeout=TIMEOUT)
    raise SystemExit(f"unknown workload {workload!r}")


try:
    print(json.dumps({"value": run(sys.argv[1])}), flush=True)
except Exception as exc:  # the outcome the test checks
    print(json.dumps({"error": {"type": type(exc).__name__, "module": type(exc).__module__, "message": str(exc)}}), flush=True)
