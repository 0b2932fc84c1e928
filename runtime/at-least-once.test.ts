import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Codec } from "../broker/codec.ts";
import { EmbeddedBroker } from "../broker/embedded/embedded-broker.ts";
import type { Transport } from "../broker/transport.ts";
import { chain, chord, group } from "../dsl/combinators.ts";
import { createApp } from "./app.ts";
import { MemoryResultStore } from "./results/result-store.ts";
import { deferred, eventually } from "./test-support.ts";
import { scaled, within } from "../tests/support/waits.ts";

describe("redelivery and revocation inside workflows", () => {
  it("counts a chord member once even if its completion is reported twice", async () => {
    const store = new MemoryResultStore();
    assert.equal(await store.arrive("wf:3", 0), 1);
    assert.equal(await store.arrive("wf:3", 0), 1);
    assert.equal(await store.arrive("wf:3", 1), 2);
  });

  it("skips a redelivered message whose task already finished", async () => {
    const broker = new EmbeddedBroker();
    const app = createApp({ broker, log: () => {} });
    let runs = 0;
    const started = deferred();
    const gate = deferred();
    const job = app.task("job", async () => {
      runs++;
      started.resolve();
      await gate.promise;
      return "done";
    });
    const first = app.worker({ name: "first" });
    await first.start();
    const r = await job.delay();
    await started.promise;
    // The result is stored, but the worker is stopped before it could ack: the message is redelivered.
    await app.results.complete(r.id, "job", { state: "SUCCESS", value: new Codec().encode("done") });
    await first.stop({ timeout: 1 });
    const second = app.worker({ name: "second" });
    await second.start();
    await eventually(
      () => second.stats().succeeded + broker.totals().acked >= 1,
      2_000,
      "the redelivery to be handled",
    );
    assert.equal(runs, 1);
    assert.equal(await within(r.get(), scaled(5_000), "the task's result after the redelivery"), "done");
    gate.resolve();
    await app.close();
  });

  it("fails the later steps of a workflow when one step is revoked on its own, and fires its error callback", async () => {
    const app = createApp({ log: () => {} });
    const ran: string[] = [];
    const step = app.task("step", (label: string) => ran.push(label));
    const notified = deferred<string>();
    const notify = app.task("notify", (failure: { error: { message: string } }) =>
      notified.resolve(failure.error.message),
    );
    const r = await chain(step.si("a"), step.si("b"), step.si("c")).onError(notify.s()).apply();
    const firstStepId = (await app.results.get(r.id))!;
    const graph = (await app.results.graph(firstStepId.workflow!))!;
    await app.result(graph.nodes[1].id).revoke();
    await app.worker().start();
    await assert.rejects(r.get({ timeout: 2_000 }), /previous step 'step' .* was revoked/);
    await app.result(graph.nodes[0].id).get({ timeout: 2_000 });
    assert.deepEqual(ran, ["a"]);
    assert.equal(await app.result(graph.nodes[1].id).state(), "REVOKED");
    assert.match(await notified.promise, /was revoked/);
    await app.close();
  });

  it("lets a running task finish when revoked without terminate", async () => {
    const app = createApp({ log: () => {} });
    const started = deferred();
    const gate = deferred();
    const job = app.task("job", async () => {
      started.resolve();
      await gate.promise;
      return "finished anyway";
    });
    await app.worker().start();
    const r = await job.delay();
    await started.promise;
    await r.revoke();
    assert.equal(await r.state(), "STARTED");
    gate.resolve();
    assert.equal(await r.get({ timeout: 2_000 }), "finished anyway");
    await app.close();
  });

  it("refuses a task routed to no queue instead of leaving it pending forever", async () => {
    const app = createApp({ log: () => {} });
    await app.broker.declareExchange("nowhere", "direct");
    const job = app.task("job", () => 1);
    await assert.rejects(
      job.applyAsync([], { exchange: "nowhere", routingKey: "x" }),
      /routes routing key "x" to no queue/,
    );
    await app.close();
  });

  it("shows RECEIVED for a message a busy worker holds for a free slot", async () => {
    const app = createApp({ log: () => {} });
    const gate = deferred();
    const started = deferred();
    const job = app.task("job", async (n: number) => {
      started.resolve();
      await gate.promise;
      return n;
    });
    await app.worker({ concurrency: 1, prefetch: 2 }).start();
    const a = await job.delay(1);
    await started.promise;
    const b = await job.delay(2);
    await eventually(async () => (await b.state()) === "RECEIVED", 2_000, "RECEIVED");
    gate.resolve();
    assert.deepEqual(
      [
        await within(a.get(), scaled(5_000), "the first task's result"),
        await within(b.get(), scaled(5_000), "the result of the task held for a free slot"),
      ],
      [1, 2],
    );
    await app.close();
  });

  it("records an early-acked task abandoned by a stopping worker as failed, not started forever", async () => {
    const app = createApp({ log: () => {} });
    const started = deferred();
    const job = app.task(
      "job",
      () => {
        started.resolve();
        return new Promise<never>(() => {});
      },
      { acksLate: false },
    );
    const worker = app.worker();
    await worker.start();
    const r = await job.delay();
    await started.promise;
    await worker.stop({ timeout: 5 });
    assert.equal(await r.state(), "FAILURE");
    assert.equal((await r.error())?.name, "WorkerError");
    await app.close();
  });

  it("fails with MaxRetriesExceededError when this.retry() is used up without a cause", async () => {
    const app = createApp({ log: () => {} });
    const stubborn = app.task("stubborn", function () {
      this.retry({ countdown: 1, max: 2 });
    });
    await app.worker().start();
    await assert.rejects((await stubborn.delay()).get({ timeout: 2_000 }), /asked for another retry after 2 retries/);
    await app.close();
  });

  it("runs partial signatures with the parent's result first", async () => {
    const app = createApp({ log: () => {} });
    const add = app.task("add", (x: number, y: number) => x + y);
    const label = app.task("label", (n: number, unit: string) => `${n} ${unit}`);
    await app.worker().start();
    assert.equal(
      await within(
        (await chain(add.s(1, 1), label.s("kg")).apply()).get(),
        scaled(5_000),
        "the chain with a partial step",
      ),
      "2 kg",
    );
    assert.deepEqual(
      await within(
        (await chord(group(add.s(1, 1)), add.si(0, 0)).apply()).get(),
        scaled(5_000),
        "the chord with an immutable callback",
      ),
      0,
    );
    await app.close();
  });
});

describe("workflow sends and refusals", () => {
  it("sends a step only once even when the step before it is re-advanced by a redelivery", async () => {
    const broker = new EmbeddedBroker();
    // Lose the first ack of task 'a', as if its worker died after advancing the workflow but before acking.
    const transport: Transport = Object.create(broker);
    transport.consume = async (queue, handler, options) => {
      const dropped = new Set<number>();
      const consumer = await broker.consume(
        queue,
        (delivery) => {
          if (delivery.envelope.headers.task === "a" && !delivery.redelivered) dropped.add(delivery.deliveryTag);
          handler(delivery);
        },
        options,
      );
      return Object.assign(Object.create(consumer), {
        ack: (tag: number) => (dropped.has(tag) ? undefined : consumer.ack(tag)),
        cancel: () => consumer.cancel(),
      });
    };
    const app = createApp({ broker: transport, log: () => {} });
    let aRuns = 0;
    let bRuns = 0;
    const a = app.task("a", () => ++aRuns);
    const b = app.task("b", (x: number) => {
      bRuns++;
      return x + 1;
    });
    const first = app.worker({ name: "first" });
    await first.start();
    const r = await chain(a.s(), b.s()).apply();
    assert.equal(await r.get({ timeout: 2_000 }), 2);
    await first.stop(); // the unacked 'a' goes back to the queue
    const second = app.worker({ name: "second" });
    await second.start();
    await eventually(
      async () => (await broker.stats("celery")).unacked + (await broker.stats("celery")).ready === 0,
      2_000,
      "the redelivery to be handled",
    );
    assert.equal(aRuns, 1, "a finished task is not run again");
    assert.equal(bRuns, 1, "the next step is not sent again");
    await app.close();
  });

  it("refuses a canvas whose later step has arguments that cannot be sent, before sending anything", async () => {
    const app = createApp({ log: () => {} });
    const add = app.task("add", (x: number, y: number) => x + y);
    const take = app.task("take", (_x: number, _f: unknown) => 1);
    await assert.rejects(
      chain(
        add.s(1, 1),
        take.s(() => 1),
      ).apply(),
      /argument 1 of task 'take': a function cannot be sent/,
    );
    const stats = await app.broker.stats("celery").catch(() => ({ ready: 0, unacked: 0 }));
    assert.equal(stats.ready + stats.unacked, 0);
    await app.close();
  });

  it("fails a later step routed to no queue, instead of retrying the step before it for ever", async () => {
    const app = createApp({ log: () => {} });
    await app.broker.declareExchange("void", "direct");
    const add = app.task("add", (x: number, y: number) => x + y);
    await app.worker().start();
    const r = await chain(add.s(1, 1), add.s(1).set({ exchange: "void", routingKey: "nobody" })).apply();
    await assert.rejects(r.get({ timeout: 2_000 }), /routes routing key "nobody" to no queue/);
    await app.close();
  });

  it("does not retry a task revoked while it ran, and records it REVOKED", async () => {
    const app = createApp({ log: () => {} });
    const started = deferred();
    const gate = deferred();
    const flaky = app.task(
      "flaky",
      async () => {
        started.resolve();
        await gate.promise;
        throw new Error("fails after its revocation");
      },
      { retry: { max: 5, delay: 1 } },
    );
    await app.worker().start();
    const r = await flaky.delay();
    await started.promise;
    await r.revoke();
    gate.resolve();
    await assert.rejects(r.get({ timeout: 2_000 }), /was revoked/);
    assert.equal(await r.state(), "REVOKED");
    await app.close();
  });

  it("leaves no record for a task that ignores its result, even when it waited for a slot", async () => {
    const app = createApp({ log: () => {} });
    const gate = deferred();
    const started = deferred();
    const done: number[] = [];
    const quiet = app.task(
      "quiet",
      async (n: number) => {
        started.resolve();
        await gate.promise;
        done.push(n);
      },
      { ignoreResult: true },
    );
    await app.worker({ concurrency: 1, prefetch: 4 }).start();
    await quiet.delay(1);
    await started.promise;
    const second = await quiet.delay(2);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    gate.resolve();
    await eventually(() => done.length === 2, 2_000, "both tasks");
    assert.equal(await second.state(), "UNKNOWN");
    await app.close();
  });
});

describe("a workflow whose graph is gone", () => {
  it("keeps the finished step's result, logs what is lost, and does not redeliver it for ever", async () => {
    const broker = new EmbeddedBroker();
    const store = new MemoryResultStore();
    const producer = createApp({ broker, results: store, log: () => {} });
    const logs: string[] = [];
    const workerSide = createApp({ broker, results: store, log: (line) => logs.push(line) });
    const a = producer.task("a", () => 1);
    const b = producer.task("b", (x: number) => x + 1);
    workerSide.task("a", () => 1);
    workerSide.task("b", (x: number) => x + 1);
    const r = await chain(a.s(), b.s()).apply();
    const first = (await store.get(r.id))!;
    const graph = (await store.graph(first.workflow!))!;
    store.graph = async () => undefined; // the store lost it (expired, or restarted) before the worker needs it
    await workerSide.worker().start();
    await eventually(() => logs.some((line) => line.includes("later steps cannot be sent")), 2_000, "the log line");
    assert.equal(
      await within(workerSide.result(graph.nodes[0].id).get(), scaled(5_000), "the finished step's result"),
      1,
    );
    const stats = await broker.stats("celery");
    assert.equal(stats.ready + stats.unacked, 0);
    await producer.close();
    await workerSide.close();
  });
});
