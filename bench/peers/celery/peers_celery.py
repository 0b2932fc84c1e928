"""The Celery app of the peers bench: the same tasks as on celerity, each counted on a probe
shared by the worker's processes (a small memory-mapped file), configured as Celery's
"Optimizing" guide advises for many short tasks. Producer (driver.py) and worker load it;
the environment names the broker, the result backend and the probe file."""
import fcntl
import mmap
import os
import struct
import sys
import time

from celery import Celery
from celery.signals import worker_ready

WORK_QUEUE = "celerity-peers-work"
IDLE_QUEUE = "celerity-peers-idle"

app = Celery("peers", broker=os.environ["CELERITY_PEERS_BROKER"], backend=os.environ.get("CELERITY_PEERS_BACKEND"))
app.conf.update(
    task_default_queue=WORK_QUEUE,
    # Short tasks: prefetch many messages per process (the guide's advice), acknowledge on receipt (the default).
    worker_prefetch_multiplier=int(os.environ.get("CELERITY_PEERS_PREFETCH", "64")),
    task_acks_late=False,
    worker_disable_rate_limits=True,
    worker_redirect_stdouts=False,
    broker_connection_retry_on_startup=True,
    result_expires=600,
    task_serializer="json",
    accept_content=["json"],
)

# The probe: a header (generation) and one slot per worker process: pid, generation, count, first start, last end.
HEADER = struct.Struct("<q")
SLOT = struct.Struct("<qqqdd")
SLOTS = 128
PROBE_SIZE = 64 + SLOTS * SLOT.size


def open_probe(path, create=False):
    fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    if create:
        os.ftruncate(fd, PROBE_SIZE)
    return fd, mmap.mmap(fd, PROBE_SIZE)


_probe = None  # (pid, fd, map, slot offset)
_latency_file = None  # (pid, generation, fd)


def _now_ms():
    return time.time() * 1000.0


def _slot():
    global _probe
    pid = os.getpid()
    if _probe is not None and _probe[0] == pid:
        return _probe
    fd, m = open_probe(os.environ["CELERITY_PEERS_PROBE"])
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        for i in range(SLOTS):
            offset = 64 + i * SLOT.size
            owner = SLOT.unpack_from(m, offset)[0]
            if owner == 0 or owner == pid:
                SLOT.pack_into(m, offset, pid, -1, 0, 0.0, 0.0)
                break
        else:
            raise RuntimeError("no free probe slot")
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
    _probe = (pid, fd, m, offset)
    return _probe


def started(now=None):
    _, _, m, offset = _slot()
    gen = HEADER.unpack_from(m, 0)[0]
    pid, slot_gen, count, first, last = SLOT.unpack_from(m, offset)
    now = _now_ms() if now is None else now
    if slot_gen != gen:
        SLOT.pack_into(m, offset, pid, gen, 0, now, 0.0)
    elif first == 0.0:
        SLOT.pack_into(m, offset, pid, gen, count, now, last)


def ended():
    _, _, m, offset = _slot()
    pid, gen, count, first, _ = SLOT.unpack_from(m, offset)
    SLOT.pack_into(m, offset, pid, gen, count + 1, first, _now_ms())


def stamped(sent_at):
    global _latency_file
    now = _now_ms()
    started(now)
    _, _, m, _ = _slot()
    gen = HEADER.unpack_from(m, 0)[0]
    pid = os.getpid()
    if _latency_file is None or _latency_file[0] != pid or _latency_file[1] != gen:
        if _latency_file is not None and _latency_file[0] == pid:
            os.close(_latency_file[2])
        path = os.path.join(os.environ["CELERITY_PEERS_PROBE"] + ".d", "lat-%d-%d" % (pid, gen))
        _latency_file = (pid, gen, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.write(_latency_file[2], struct.pack("<d", now - sent_at))


@app.task(name="peers.noop", ignore_result=True)
def noop(n):
    started()
    ended()


@app.task(name="peers.stamp", ignore_result=True)
def stamp(sent_at):
    stamped(sent_at)
    ended()


@app.task(name="peers.add")
def add(x, y):
    started()
    ended()
    return x + y


@app.task(name="peers.tsum")
def tsum(xs):
    started()
    total = sum(xs)
    ended()
    return total


@worker_ready.connect
def _ready(**_):
    sys.__stderr__.write("celery peers worker ready\n")
    sys.__stderr__.flush()
