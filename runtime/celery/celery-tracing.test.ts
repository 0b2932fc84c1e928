import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Redis } from "ioredis";
import { redisSkipReason, TEST_REDIS_URL } from "../../broker/redis/redis-test-support.ts";
import { eventually } from "../../tests/support/waits.ts";
import { createCeleryApp } from "./celery-app.ts";
import { parseCeleryMessage } from "./celery-message.ts";
import { decodeKombuEnvelope, priorityLists } from "./kombu-redis-envelope.ts";

const skip = await redisSkipReason();

const CELERY_HEADERS = [
  "argsrepr",
  "eta",
  "expires",
  "group",
  "group_index",
  "id",
  "ignore_result",
  "kwargsrepr",
  "lang",
  "origin",
  "parent_id",
  "retries",
  "root_id",
  "shadow",
  "task",
  "timelimit",
];

describe("tracing on the Celery protocol", { skip }, () => {
  const queue = `celerity-celery-trace-${randomUUID().slice(0, 8)}`;
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true });
  const exporter = new InMemorySpanExporter();
  after(async () => {
    await redis.del(...priorityLists(queue), `_kombu.binding.${queue}`).catch(() => undefined);
    redis.disconnect();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  /** The messages waiting in the queue, as a Celery worker would read them. */
  const waiting = async () => {
    if (redis.status !== "ready") await redis.connect();
    const raw = (await Promise.all(priorityLists(queue).map((list) => redis.lrange(list, 0, -1)))).flat();
    return raw.map((entry) => decodeKombuEnvelope(entry));
  };

  it("writes Celery's headers only when no OpenTelemetry SDK is registered", async (t) => {
    const app = createCeleryApp({ broker: TEST_REDIS_URL, queue, resultExpires: 60, log: () => {} });
    t.after(() => app.close());
    await app.sendTask("ts.add", [1, 2]);
    const [message] = await waiting();
    assert.deepEqual(Object.keys(message.headers).sort(), CELERY_HEADERS);
    await redis.del(...priorityLists(queue));
  });

  describe("with an SDK registered", () => {
    before(() => {
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      propagation.setGlobalPropagator(new W3CTraceContextPropagator());
      trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    });

    it("adds traceparent to a message that stays valid protocol 2", async (t) => {
      const app = createCeleryApp({ broker: TEST_REDIS_URL, queue, resultExpires: 60, log: () => {} });
      t.after(() => app.close());
      exporter.reset();
      await app.sendTask("ts.add", [1, 2]);
      const [message] = await waiting();
      assert.deepEqual(Object.keys(message.headers).sort(), [...CELERY_HEADERS, "traceparent"].sort());
      const publish = exporter.getFinishedSpans().find((span) => span.name === "publish ts.add");
      assert.ok(publish, "a publish span was recorded");
      assert.equal(publish.kind, SpanKind.PRODUCER);
      assert.equal(
        message.headers.traceparent,
        `00-${publish.spanContext().traceId}-${publish.spanContext().spanId}-01`,
      );
      const parsed = parseCeleryMessage(message.headers, message.body, queue, message.priority);
      assert.equal(parsed.task, "ts.add");
      assert.deepEqual(parsed.args, [1, 2]);
      await redis.del(...priorityLists(queue));
    });

    it("makes the publish span the parent of the worker's run span, and marks a failed run", async (t) => {
      const app = createCeleryApp({ broker: TEST_REDIS_URL, queue, resultExpires: 60, log: () => {} });
      t.after(() => app.close());
      const add = app.task("ts.add", (x: number, y: number) => x + y);
      app.task("ts.fail", () => {
        throw new RangeError("out of stock");
      });
      await app.worker({ concurrency: 2 }).start();
      exporter.reset();
      const result = await add.delay(20, 22);
      assert.equal(await result.get({ timeout: 10_000 }), 42);
      await assert.rejects((await app.sendTask("ts.fail", [])).get({ timeout: 10_000 }));
      await eventually(() => exporter.getFinishedSpans().filter((span) => span.name.startsWith("run ")).length === 2, {
        what: "the two run spans",
        timeoutMs: 10_000,
      });
      const spans = exporter.getFinishedSpans();
      const named = (name: string) => spans.find((span) => span.name === name);
      const [publish, run] = [named("publish ts.add"), named("run ts.add")];
      assert.ok(publish && run);
      assert.equal(run.kind, SpanKind.CONSUMER);
      assert.equal(run.spanContext().traceId, publish.spanContext().traceId);
      assert.equal(run.parentSpanContext?.spanId, publish.spanContext().spanId);
      assert.equal(run.attributes["celerity.task.id"], result.id);
      const failed = named("run ts.fail");
      assert.equal(failed?.status.code, SpanStatusCode.ERROR);
      assert.match(failed?.status.message ?? "", /RangeError: out of stock/);
    });
  });
});
