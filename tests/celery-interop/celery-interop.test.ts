import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { propagation, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Redis } from "ioredis";
import { chain, chord, group } from "../../src/index.ts";
import { redisSkipReason } from "../../broker/redis/redis-test-support.ts";
import { RemoteTaskError } from "../../runtime/errors.ts";
import { createApp } from "../../runtime/app.ts";
import { createCeleryApp, type CeleryApp } from "../../runtime/celery/celery-app.ts";
import { priorityLists } from "../../runtime/celery/kombu-redis-envelope.ts";
import { testVhost, type TestVhost } from "../../broker/amqp/amqp-test-broker.ts";
import {
  INTEROP_REDIS,
  interopQueue,
  pythonCelerySkipReason,
  runPythonProducer,
  startPythonWorker,
  type PythonWorker,
} from "./python-celery.ts";

const skip = (await redisSkipReason()) || pythonCelerySkipReason();
const vhost: TestVhost | { readonly skip: string } = skip === false ? await testVhost("celery-interop") : { skip };
const amqpSkip = "skip" in vhost ? vhost.skip : false;
after(async () => {
  if (!("skip" in vhost)) await vhost.dispose();
});

/** Each broker Celery's protocol runs on, with results in Redis either way. */
const brokers = [
  { name: "Redis", url: INTEROP_REDIS, skip },
  { name: "RabbitMQ", url: "skip" in vhost ? "" : vhost.url, skip: skip || amqpSkip },
] as const;

for (const { name: brokerName, url: brokerUrl, skip: brokerSkip } of brokers) {
  /** Delete what a test's queue left in Redis (its lists, dead letters and binding). */
  const dropQueue = async (queue: string): Promise<void> => {
    const redis = new Redis(INTEROP_REDIS);
    try {
      await redis.del(...priorityLists(queue), `${queue}.dead-letter`, `_kombu.binding.${queue}`);
    } finally {
      redis.disconnect();
    }
  };

  describe(`TypeScript producer, Python Celery worker (${brokerName})`, { skip: brokerSkip }, () => {
    const queue = interopQueue();
    let worker: PythonWorker;
    let app: CeleryApp;
    const add = () => app.remoteTask<(x: number, y: number) => number>("py.add");
    const mul = () => app.remoteTask<(x: number, y: number) => number>("py.mul");
    const tsum = () => app.remoteTask<(numbers: number[]) => number>("py.tsum");

    before(async () => {
      worker = await startPythonWorker(queue, brokerUrl);
      app = createApp({ protocol: "celery", broker: brokerUrl, results: INTEROP_REDIS, queue, resultExpires: 600 });
    });
    after(async () => {
      await app?.close();
      await worker?.stop();
      await dropQueue(queue);
    });

    it("runs a task a Python worker implements and reads its result", async () => {
      assert.equal(await (await add().delay(2, 3)).get({ timeout: 20_000 }), 5);
    });

    it("hands a producer's trace context to Python Celery in the traceparent header its instrumentation reads", async (t) => {
      const exporter = new InMemorySpanExporter();
      propagation.setGlobalPropagator(new W3CTraceContextPropagator());
      trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
      t.after(() => {
        trace.disable();
        propagation.disable();
      });
      const seen = await (await app.remoteTask<() => string | null>("py.traceparent").delay()).get({ timeout: 20_000 });
      const publish = exporter.getFinishedSpans().find((span) => span.name === "publish py.traceparent");
      assert.ok(publish, "the send made a publish span");
      assert.equal(seen, `00-${publish.spanContext().traceId}-${publish.spanContext().spanId}-01`);
    });

    it("sends keyword arguments to a Python task", async () => {
      const describeTask =
        app.remoteTask<(name: string) => { text: string; extra: Record<string, unknown> }>("py.describe");
      const result = await describeTask.applyAsync(["ada"], { kwargs: { greeting: "hi", mood: "glad" } });
      assert.deepEqual(await result.get({ timeout: 20_000 }), { text: "hi, ada", extra: { mood: "glad" } });
    });

    it("raises a Python exception as RemoteTaskError with its type, message and traceback", async () => {
      const fail = app.remoteTask<(reason: string) => never>("py.fail");
      const error = await (await fail.delay("broken in python")).get({ timeout: 20_000 }).then(
        () => assert.fail("a failing task resolved"),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof RemoteTaskError, String(error));
      assert.equal(error.remote.name, "ValueError");
      assert.equal(error.remote.message, "broken in python");
      assert.match(error.traceback ?? "", /Traceback[\s\S]*ValueError: broken in python/);
    });

    it("runs a chain whose steps run in Python (Celery's embed.chain)", async () => {
      const result = await chain(add().s(1, 1), add().s(2), mul().s(10)).apply();
      assert.equal(await result.get({ timeout: 20_000 }), 40);
      assert.equal(await result.parent?.get({ timeout: 1_000 }), 4);
    });

    it("rejects a chain's result with the error of the Python step that failed", async () => {
      const fail = app.remoteTask<(x: number, reason: string) => number>("py.fail");
      const result = await chain(add().s(1, 1), fail.s("step broke"), mul().s(10)).apply();
      await assert.rejects(
        result.get({ timeout: 20_000 }),
        (error: unknown) => error instanceof RemoteTaskError && error.remote.name === "ValueError",
      );
    });

    it("runs a group in Python and gathers the results in order", async () => {
      const result = await group(add().s(1, 1), add().s(2, 2), mul().s(3, 3)).apply();
      assert.deepEqual(await result.get({ timeout: 20_000 }), [2, 4, 9]);
    });

    it("runs a chord in Python, joined with Celery's Redis chord counters", async () => {
      const result = await chord(group(mul().s(1, 1), mul().s(2, 2), mul().s(3, 3), mul().s(4, 4)), tsum().s()).apply();
      assert.equal(await result.get({ timeout: 20_000 }), 30);
    });

    it("sees a Python task's retries and its final result", async () => {
      const retryOnce = app.remoteTask<(value: number) => { value: number; retries: number }>("py.retry_once");
      assert.deepEqual(await (await retryOnce.delay(7)).get({ timeout: 20_000 }), { value: 7, retries: 1 });
    });

    it("sends eta with a time-zone offset that Python honours", async () => {
      const started = Date.now();
      const result = await add().applyAsync([20, 22], { countdown: 1_000 });
      assert.equal(await result.get({ timeout: 20_000 }), 42);
      assert.ok(Date.now() - started >= 900, "the task ran before its eta");
    });
  });

  describe(`Python Celery producer, TypeScript worker (${brokerName})`, { skip: brokerSkip }, () => {
    const queue = interopQueue();
    let app: CeleryApp;

    before(async () => {
      app = createCeleryApp({ broker: brokerUrl, results: INTEROP_REDIS, queue, resultExpires: 600 });
      app.task("ts.add", (x: number, y: number) => x + y);
      app.task("ts.mul", (x: number, y: number) => x * y);
      app.task("ts.tsum", (numbers: number[]) => numbers.reduce((a, b) => a + b, 0));
      // In a chain, the previous step's result comes first: the reason is the last argument.
      app.task("ts.fail", (...args: unknown[]) => {
        throw new TypeError(String(args[args.length - 1]));
      });
      app.task("ts.describe", function (name: string) {
        const greeting = (this.kwargs.greeting as string | undefined) ?? "hello";
        return `${greeting}, ${name}`;
      });
      app.task("ts.retry-once", function (value: number) {
        if (this.retries === 0) this.retry({ countdown: 50 });
        return { value, retries: this.retries };
      });
      await app.worker({ concurrency: 4 }).start();
    });
    after(async () => {
      await app?.close();
      await dropQueue(queue);
    });

    it("serves a task Python sends, and Python's get() reads the result", async () => {
      assert.deepEqual(await runPythonProducer(queue, brokerUrl, "single"), { value: 5 });
    });

    it("hands keyword arguments to the handler as this.kwargs", async () => {
      assert.deepEqual(await runPythonProducer(queue, brokerUrl, "kwargs"), { value: "hi, ada" });
    });

    it("stores a TypeScript failure so that Python's get() raises it with the message", async () => {
      const outcome = await runPythonProducer(queue, brokerUrl, "fail");
      assert.ok("error" in outcome, JSON.stringify(outcome));
      assert.equal(outcome.error.type, "TypeError");
      assert.equal(outcome.error.message, "broken on purpose");
    });

    it("runs each step of a Python chain", async () => {
      assert.deepEqual(await runPythonProducer(queue, brokerUrl, "chain"), { value: 40 });
    });

    it("fails the rest of a Python chain when a TypeScript step fails, so Python's get() raises", async () => {
      const outcome = await runPythonProducer(queue, brokerUrl, "failing-chain");
      assert.ok("error" in outcome, JSON.stringify(outcome));
      assert.equal(outcome.error.type, "TypeError");
      assert.equal(outcome.error.message, "step broke");
    });

    it("runs a Python group", async () => {
      assert.deepEqual(await runPythonProducer(queue, brokerUrl, "group"), { value: [0, 2, 4, 6] });
    });

    it("joins a Python chord on Celery's Redis counters and runs its body", async () => {
      assert.deepEqual(await runPythonProducer(queue, brokerUrl, "chord"), { value: 30 });
    });

    it("fails a Python chord's body with ChordError when a member fails", async () => {
      const outcome = await runPythonProducer(queue, brokerUrl, "failing-chord");
      assert.ok("error" in outcome, JSON.stringify(outcome));
      assert.equal(outcome.error.type, "ChordError");
      assert.match(outcome.error.message, /member broke/);
    });

    it("retries a task with the retry count Python sees", async () => {
      assert.deepEqual(await runPythonProducer(queue, brokerUrl, "retry"), { value: { value: 7, retries: 1 } });
    });
  });
}
