import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { createEmbeddedBroker } from "../../broker/embedded/embedded-broker.ts";
import type { Envelope } from "../../broker/envelope.ts";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { chain } from "../../dsl/combinators.ts";
import { eventually, within } from "../../tests/support/waits.ts";
import { createApp, type App } from "../app.ts";
import { serveResults } from "../results/result-service.ts";
import { tracingRegistered } from "./task-tracing.ts";

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

/** The first message waiting in `queue`, read straight off the broker (no worker runs). */
const firstMessage = async (broker: ReturnType<typeof createEmbeddedBroker>, queue: string): Promise<Envelope> => {
  let received: Envelope | undefined;
  const consumer = await broker.consume(queue, (delivery) => (received ??= delivery.envelope), { prefetch: 1 });
  await eventually(() => received !== undefined, { what: `a message on queue '${queue}'` });
  await consumer.cancel();
  return received as Envelope;
};

const registerTasks = (app: App) => ({
  add: app.task("add", (x: number, y: number) => x + y),
  fail: app.task("fail", () => {
    throw new TypeError("no such invoice");
  }),
});

describe("tasks without an OpenTelemetry SDK", () => {
  it("adds no trace header to a task's message when no tracer provider or propagator is registered", async () => {
    assert.equal(tracingRegistered(), false);
    const broker = createEmbeddedBroker();
    const app = createApp({ broker, log: () => {} });
    const { add } = registerTasks(app);
    await add.delay(1, 2);
    const envelope = await firstMessage(broker, "celery");
    assert.deepEqual(Object.keys(envelope.headers).sort(), ["retries", "task"]);
    await app.close();
  });
});

describe("tasks traced with an OpenTelemetry SDK", () => {
  const exporter = new InMemorySpanExporter();
  const contextManager = new AsyncLocalStorageContextManager();
  before(() => {
    context.setGlobalContextManager(contextManager.enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  });
  after(() => {
    trace.disable();
    propagation.disable();
    context.disable();
  });

  const spansNamed = async (name: string, count = 1): Promise<ReadableSpan[]> => {
    await eventually(() => exporter.getFinishedSpans().filter((span) => span.name === name).length >= count, {
      what: `${count} finished span(s) named '${name}'`,
    });
    return exporter.getFinishedSpans().filter((span) => span.name === name);
  };

  const assertParent = (child: ReadableSpan, parent: ReadableSpan): void => {
    assert.equal(
      child.spanContext().traceId,
      parent.spanContext().traceId,
      `${child.name} is in ${parent.name}'s trace`,
    );
    assert.equal(
      child.parentSpanContext?.spanId,
      parent.spanContext().spanId,
      `${child.name} is a child of ${parent.name}`,
    );
  };

  /** The producer's publish span is the parent of the worker's run span, both carrying the task's name and id. */
  const assertTraced = async (add: ReturnType<typeof registerTasks>["add"]): Promise<void> => {
    exporter.reset();
    const result = await add.delay(2, 3);
    assert.equal(await result.get({ timeout: 5_000 }), 5);
    const [publish] = await spansNamed("publish add");
    const [run] = await spansNamed("run add");
    assert.equal(publish.kind, SpanKind.PRODUCER);
    assert.equal(run.kind, SpanKind.CONSUMER);
    assertParent(run, publish);
    for (const span of [publish, run]) {
      assert.equal(span.attributes["celerity.task.name"], "add");
      assert.equal(span.attributes["celerity.task.id"], result.id);
      assert.equal(span.attributes["messaging.destination.name"], "celery");
    }
    assert.equal(run.attributes["celerity.task.outcome"], "succeeded");
    assert.equal(run.status.code, SpanStatusCode.UNSET);
  };

  it("carries the trace context in the message's traceparent header", async () => {
    assert.equal(tracingRegistered(), true);
    const broker = createEmbeddedBroker();
    const app = createApp({ broker, log: () => {} });
    const { add } = registerTasks(app);
    await add.delay(1, 2);
    const envelope = await firstMessage(broker, "celery");
    assert.match(String(envelope.headers.traceparent), TRACEPARENT);
    const [publish] = await spansNamed("publish add");
    assert.equal(String(envelope.headers.traceparent).split("-")[2], publish.spanContext().spanId);
    await app.close();
  });

  it("makes the producer's publish span the parent of the worker's run span on the embedded broker", async () => {
    const app = createApp({ log: () => {} });
    const { add } = registerTasks(app);
    await app.worker({ concurrency: 2 }).start();
    await assertTraced(add);
    await app.close();
  });

  it("makes the publish span a child of the caller's active span", async () => {
    const app = createApp({ log: () => {} });
    const { add } = registerTasks(app);
    await app.worker({ concurrency: 2 }).start();
    exporter.reset();
    const tracer = trace.getTracer("test");
    await tracer.startActiveSpan("handle request", async (request) => {
      await (await add.delay(1, 1)).get({ timeout: 5_000 });
      request.end();
    });
    const [request] = await spansNamed("handle request");
    const [publish] = await spansNamed("publish add");
    assertParent(publish, request);
    await app.close();
  });

  it("marks a failed run's span as an error with the exception recorded", async () => {
    const app = createApp({ log: () => {} });
    const { fail } = registerTasks(app);
    await app.worker({ concurrency: 2 }).start();
    exporter.reset();
    await assert.rejects((await fail.delay()).get({ timeout: 5_000 }));
    const [run] = await spansNamed("run fail");
    assert.equal(run.status.code, SpanStatusCode.ERROR);
    assert.match(run.status.message ?? "", /TypeError: no such invoice/);
    assert.equal(run.attributes["celerity.task.outcome"], "failed");
    const exception = run.events.find((event) => event.name === "exception");
    assert.equal(exception?.attributes?.["exception.message"], "no such invoice");
    await app.close();
  });

  it("sends a chain's next step from within the previous step's run span", async () => {
    const app = createApp({ log: () => {} });
    const { add } = registerTasks(app);
    await app.worker({ concurrency: 2 }).start();
    exporter.reset();
    assert.equal(await (await chain(add.s(1, 1), add.s(10)).apply()).get({ timeout: 5_000 }), 12);
    const runs = await spansNamed("run add", 2);
    const publishes = await spansNamed("publish add", 2);
    const firstPublish = publishes.find((span) => span.parentSpanContext === undefined) as ReadableSpan;
    const secondPublish = publishes.find((span) => span !== firstPublish) as ReadableSpan;
    const firstRun = runs.find((span) => span.parentSpanContext?.spanId === firstPublish.spanContext().spanId);
    assert.ok(firstRun, "the first step's run span is a child of its publish span");
    const secondRun = runs.find((span) => span !== firstRun) as ReadableSpan;
    assertParent(secondPublish, firstRun);
    assertParent(secondRun, secondPublish);
    await app.close();
  });

  it("gives each message of a bulk send its publish span, the parent of its run span", async () => {
    const app = createApp({ log: () => {} });
    const { add } = registerTasks(app);
    await app.worker({ concurrency: 2 }).start();
    exporter.reset();
    const results = await add.delayMany([
      [1, 1],
      [2, 2],
    ]);
    assert.deepEqual(await Promise.all(results.map((result) => result.get({ timeout: 5_000 }))), [2, 4]);
    const publishes = await spansNamed("publish add", 2);
    const runs = await spansNamed("run add", 2);
    for (const result of results) {
      const publish = publishes.find((span) => span.attributes["celerity.task.id"] === result.id) as ReadableSpan;
      const run = runs.find((span) => span.attributes["celerity.task.id"] === result.id) as ReadableSpan;
      assertParent(run, publish);
    }
    await app.close();
  });

  it("makes the producer's publish span the parent of the worker's run span across a broker node", async () => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    serveResults(node);
    const producer = createApp({ broker: node.url, log: () => {} });
    const workerSide = createApp({ broker: node.url, log: () => {} });
    const { add } = registerTasks(producer);
    registerTasks(workerSide);
    try {
      await within(workerSide.worker({ concurrency: 2 }).start(), 5_000, "the worker to start on the node");
      await assertTraced(add);
    } finally {
      await producer.close();
      await workerSide.close();
      await node.stop();
    }
  });
});
