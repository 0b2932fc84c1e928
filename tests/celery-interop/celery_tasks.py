"""The Python side of the interop tests: a Celery app on the broker the test
names (CELERITY_INTEROP_BROKER: Redis or RabbitMQ) with results in Redis
(CELERITY_INTEROP_REDIS), its default queue (CELERITY_INTEROP_QUEUE) of the
test's own, and the tasks named py.*."""
import os

from celery import Celery

app = Celery("interop", broker=os.environ["CELERITY_INTEROP_BROKER"], backend=os.environ["CELERITY_INTEROP_REDIS"])
app.conf.update(
    task_default_queue=os.environ["CELERITY_INTEROP_QUEUE"],
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_redirect_stdouts=False,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    result_expires=600,
)


@app.task(name="py.add")
def add(x, y):
    return x + y


@app.task(name="py.mul")
def mul(x, y):
    return x * y


@app.task(name="py.tsum")
def tsum(numbers):
    return sum(numbers)


@app.task(name="py.fail")
def fail(*args):
    raise ValueError(args[-1])


@app.task(name="py.describe")
def describe(name, greeting="hello", **extra):
    return {"text": f"{greeting}, {name}", "extra": extra}


@app.task(name="py.retry_once", bind=True)
def retry_once(self, value):
    if self.request.retries == 0:
        raise self.retry(countdown=0.1, max_retries=3)
    return {"value": value, "retries": self.request.retries}


@app.task(name="py.traceparent", bind=True)
def traceparent(self):
    # Where Celery's OpenTelemetry instrumentation reads the caller's context: the request, from the headers.
    return getattr(self.request, "traceparent", None)
