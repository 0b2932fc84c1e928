"""The producer side of the peers bench on Celery: obeys the harness line by line on stdin
(one JSON request each), answers one JSON line each on stdout. Sends through Celery's own
client (apply_async, chain, chord) and reads the workers' probe."""
import glob
import json
import os
import struct
import sys
import time

import amqp
import celery
import kombu
import redis as redis_py
from celery import chain, chord

import peers_celery as pc


def window(m):
    gen = pc.HEADER.unpack_from(m, 0)[0]
    count, first, last = 0, 0.0, 0.0
    for i in range(pc.SLOTS):
        pid, slot_gen, c, f, l = pc.SLOT.unpack_from(m, 64 + i * pc.SLOT.size)
        if pid == 0 or slot_gen != gen:
            continue
        count += c
        if f > 0 and (first == 0 or f < first):
            first = f
        last = max(last, l)
    return {"count": count, "first": first, "last": last}


def paced(task, n, rate):
    t0 = time.perf_counter()
    per_s = float(rate)
    sent = 0
    with pc.app.producer_or_acquire() as producer:
        while sent < n:
            due = min(n, int((time.perf_counter() - t0) * per_s) + 1)
            while sent < due:
                task.apply_async((pc._now_ms(),), producer=producer)
                sent += 1
            time.sleep(0.001)


def purge(queue):
    with pc.app.connection_for_write() as conn:
        channel = conn.default_channel
        try:
            channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            channel.queue_purge(queue)
        except Exception as error:  # a queue that does not exist yet has nothing to purge
            sys.stderr.write("purge %s: %s\n" % (queue, error))


def versions():
    out = {"celery": celery.__version__, "kombu": kombu.__version__, "py-amqp": amqp.__version__, "redis-py": redis_py.__version__, "python": sys.version.split()[0]}
    with pc.app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        props = getattr(conn.connection, "server_properties", None)
        if props:
            out["rabbitmq"] = props.get("version", b"?").decode() if isinstance(props.get("version"), bytes) else str(props.get("version"))
    if os.environ.get("CELERITY_PEERS_BACKEND", "").startswith("redis://") or os.environ["CELERITY_PEERS_BROKER"].startswith("redis://"):
        out["redis"] = redis_py.Redis(host="127.0.0.1", port=int(os.environ.get("CELERITY_PEERS_REDIS_PORT", "6379"))).info("server")["redis_version"]
    return out


def main():
    path = os.environ["CELERITY_PEERS_PROBE"]
    os.makedirs(path + ".d", exist_ok=True)
    fd, m = pc.open_probe(path, create=True)
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            value = None
            if op == "enqueue" or op == "fill":
                queue = pc.IDLE_QUEUE if op == "enqueue" else pc.WORK_QUEUE
                if request.get("mode") == "single":
                    for i in range(request["n"]):
                        pc.noop.apply_async((i,), queue=queue)
                else:
                    # Celery has no bulk send: the nearest is one producer (one connection, one channel) for the batch.
                    with pc.app.producer_or_acquire() as producer:
                        for i in range(request["n"]):
                            pc.noop.apply_async((i,), queue=queue, producer=producer)
            elif op == "purge":
                purge(request["queue"])
            elif op == "send":
                with pc.app.producer_or_acquire() as producer:
                    for i in range(request["n"]):
                        pc.noop.apply_async((i,), producer=producer)
            elif op == "chains":
                with pc.app.producer_or_acquire() as producer:
                    for i in range(request["k"]):
                        steps = [pc.add.s(i, 1)] + [pc.add.s(1) for _ in range(request["length"] - 1)]
                        chain(*steps).apply_async(producer=producer)
            elif op == "chord":
                chord([pc.add.s(i, i) for i in range(request["n"])])(pc.tsum.s())
            elif op == "paced":
                paced(pc.stamp, request["n"], request["rate"])
            elif op == "reset":
                gen = pc.HEADER.unpack_from(m, 0)[0] + 1
                pc.HEADER.pack_into(m, 0, gen)
            elif op == "wait":
                deadline = time.monotonic() + request["timeoutMs"] / 1000.0
                while True:
                    w = window(m)
                    if w["count"] >= request["count"]:
                        value = w
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("the workers ran %d of %d tasks in %d ms" % (w["count"], request["count"], request["timeoutMs"]))
                    time.sleep(0.0005)
            elif op == "latencies":
                gen = pc.HEADER.unpack_from(m, 0)[0]
                value = []
                for f in glob.glob(os.path.join(path + ".d", "lat-*-%d" % gen)):
                    with open(f, "rb") as fh:
                        data = fh.read()
                    value.extend(x[0] for x in struct.iter_unpack("<d", data[: len(data) // 8 * 8]))
            elif op == "versions":
                value = versions()
            else:
                raise ValueError("unknown request %r" % op)
            sys.stdout.write(json.dumps({"ok": True, "value": value}) + "\n")
        except Exception as error:
            sys.stdout.write(json.dumps({"ok": False, "error": "%s: %s" % (type(error).__name__, error)}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
