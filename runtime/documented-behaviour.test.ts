// Behaviours docs/options.md, docs/results.md and docs/broker-node.md promise, each held to its word.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, it } from "node:test";
import { InvalidArgumentError } from "../broker/errors.ts";
import { BrokerNode } from "../broker/node/node-server.ts";
import { FrameCodec, FrameType, PROTOCOL_VERSION, ProtocolError } from "../broker/node/protocol.ts";
import { FrameParser, FrameWriter } from "../broker/node/wire-frame.ts";
import { chain } from "../dsl/combinators.ts";
import { eventually, scaled, within } from "../tests/support/waits.ts";
import { createApp } from "./app.ts";
import { RemoteTaskError, UnknownResultError, WorkerError } from "./errors.ts";
import { serveResults } from "./results/result-service.ts";

const quietApp = () => createApp({ log: () => {} });

describe("documented: where options come from (docs/options.md)", () => {
  it("routes by the call's options over the signature's over the task's, and an undefined field overrides nothing", async (t) => {
    const app = quietApp();
    t.after(() => app.close());
    const job = app.task("job", (x: number) => x, { queue: "from-task" });
    for (const queue of ["from-task", "from-signature", "from-call"]) await app.broker.declareQueue(queue);
    await job.applyAsync([1]);
    await job.s(2).set({ queue: "from-signature" }).apply();
    await job.s(3).set({ queue: "from-signature" }).apply({ queue: "from-call" });
    await job.applyAsync([4], { queue: undefined });
    assert.equal(
      (await app.broker.stats("from-task")).ready,
      2,
      "the task's default, and a call whose queue is undefined",
    );
    assert.equal((await app.broker.stats("from-signature")).ready, 1);
    assert.equal((await app.broker.stats("from-call")).ready, 1);
  });

  it("applies a canvas's apply(options) to every step", async (t) => {
    const app = quietApp();
    t.after(() => app.close());
    const add = app.task("add", (x: number, y: number) => x + y, { queue: "adds" });
    await app.worker({ queues: ["everything-here"] }).start();
    const r = await chain(add.s(1, 1), add.s(2), add.s(3)).apply({ queue: "everything-here" });
    assert.equal(await within(r.get(), 5_000, "the chain, every step on the queue apply() named"), 7);
  });

  it("replaces the task's whole retry policy with the call's, but keeps the task's retryOn", async (t) => {
    const app = quietApp();
    t.after(() => app.close());
    const attempts: string[] = [];
    const flaky = app.task(
      "flaky",
      function (kind: string) {
        attempts.push(`${kind}:${this.retries}`);
        throw new Error(kind);
      },
      { retry: { max: 5, delay: 1, retryOn: (error) => (error as Error).message === "transient" } },
    );
    await app.worker().start();
    const limited = await flaky.applyAsync(["transient"], { retry: { max: 1, delay: 1 } });
    await assert.rejects(within(limited.get(), 5_000, "the retried task"), /transient/);
    assert.deepEqual(attempts, ["transient:0", "transient:1"], "the call's max of 1, not the task's 5");
    attempts.length = 0;
    const permanent = await flaky.applyAsync(["permanent"], { retry: { max: 3, delay: 1 } });
    await assert.rejects(within(permanent.get(), 5_000, "the failing task"), /permanent/);
    assert.deepEqual(attempts, ["permanent:0"], "retryOn came from the task and refused the error");
  });
});

describe("documented: timing (docs/options.md)", () => {
  it("reads a numeric expires as milliseconds from now, not as a time", async (t) => {
    const app = quietApp();
    t.after(() => app.close());
    const job = app.task("job", () => "ran");
    await app.worker().start();
    // As an epoch time 60,000 ms would be in 1970, long expired.
    const r = await job.applyAsync([], { expires: 60_000 });
    assert.equal(await within(r.get(), 5_000, "the task"), "ran");
  });

  it("runs a task whose eta or countdown is in the past at once", async (t) => {
    const app = quietApp();
    t.after(() => app.close());
    const job = app.task("job", () => "ran");
    await app.worker().start();
    const past = await job.applyAsync([], { eta: Date.now() - 3_600_000 });
    const negative = await job.applyAsync([], { countdown: -60_000 });
    assert.equal(await within(past.get(), 5_000, "the task with a past eta"), "ran");
    assert.equal(await within(negative.get(), 5_000, "the task with a negative countdown"), "ran");
  });
});

describe("documented: ignoreResult (docs/options.md)", () => {
  it("keeps no record of a success, but records a failure", async (t) => {
    const app = quietApp();
    t.after(() => app.close());
    const fine = app.task("fine", () => 1, { ignoreResult: true });
    const broken = app.task(
      "broken",
      () => {
        throw new Error("broken on purpose");
      },
      { ignoreResult: true },
    );
    const worker = app.worker();
    await worker.start();
    const ok = await fine.delay();
    const failed = await broken.delay();
    // With no PENDING record to wait on, get() answers from what is recorded when it is called: wait for the failure first.
    await eventually(() => worker.stats().failed === 1, { what: "the failing task to have run" });
    await assert.rejects(failed.get({ timeout: 1_000 }), (error: unknown) => {
      assert.ok(error instanceof RemoteTaskError, String(error));
      assert.match(error.message, /broken on purpose/);
      return true;
    });
    await eventually(() => worker.stats().succeeded === 1, { what: "the successful task to have run" });
    assert.equal(await ok.state(), "UNKNOWN");
    await assert.rejects(ok.get({ timeout: 100 }), UnknownResultError);
  });
});

describe("documented: WorkerOptions (docs/options.md)", () => {
  it("refuses an empty queue list and a concurrency that is not a positive integer with WorkerError", async (t) => {
    const app = quietApp();
    t.after(() => app.close());
    assert.throws(() => app.worker({ queues: [] }), WorkerError);
    assert.throws(() => app.worker({ concurrency: 0 }), WorkerError);
    assert.throws(() => app.worker({ concurrency: 1.5 }), WorkerError);
  });

  it("refuses a prefetch below 1 with InvalidArgumentError when the worker starts", async (t) => {
    const app = quietApp();
    t.after(() => app.close());
    await assert.rejects(app.worker({ prefetch: 0 }).start(), InvalidArgumentError);
  });

  it("counts what it ran in stats(): succeeded, failed and retried", async (t) => {
    const app = quietApp();
    t.after(() => app.close());
    const ok = app.task("ok", () => 1);
    const bad = app.task("bad", () => {
      throw new Error("no");
    });
    const once = app.task(
      "once",
      function () {
        if (this.retries === 0) this.retry({ countdown: 1 });
        return "second time";
      },
      { retry: { max: 1 } },
    );
    const worker = app.worker();
    await worker.start();
    await within((await ok.delay()).get(), scaled(5_000), "the first succeeding task");
    await within((await ok.delay()).get(), scaled(5_000), "the second succeeding task");
    await assert.rejects(within((await bad.delay()).get(), scaled(5_000), "the failing task"));
    assert.equal(await within((await once.delay()).get(), 5_000, "the retried task"), "second time");
    const stats = worker.stats();
    assert.deepEqual(
      { succeeded: stats.succeeded, failed: stats.failed, retried: stats.retried, running: stats.running },
      { succeeded: 3, failed: 1, retried: 1, running: 0 },
    );
  });
});

describe("documented: app options (docs/options.md)", () => {
  it("refuses a broker url of no scheme it knows with an InvalidArgumentError listing the schemes", () => {
    assert.throws(
      () => createApp({ broker: "redis//nowhere" }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.match(
          error.message,
          /invalid broker url: "redis\/\/nowhere" has no scheme celerity knows; use one of celerity:\/\/, redis:\/\//,
        );
        return true;
      },
    );
  });

  it("refuses a node url it cannot read with a ProtocolError saying what it must look like", () => {
    assert.throws(
      () => createApp({ broker: "celerity://nowhere" }),
      (error: unknown) => {
        assert.ok(error instanceof ProtocolError, String(error));
        assert.match(error.message, /broker url must look like celerity:\/\/host:port, got 'celerity:\/\/nowhere'/);
        return true;
      },
    );
  });

  it("takes the node's token from CELERITY_TOKEN when none is given", async (t) => {
    const node = await BrokerNode.start({ port: 0, token: "from-the-environment", log: () => {} });
    serveResults(node);
    const before = process.env.CELERITY_TOKEN;
    process.env.CELERITY_TOKEN = "from-the-environment";
    const app = createApp({ broker: node.url, log: () => {} });
    t.after(async () => {
      if (before === undefined) delete process.env.CELERITY_TOKEN;
      else process.env.CELERITY_TOKEN = before;
      await app.close();
      await node.stop();
    });
    const echo = app.task("echo", (x: string) => x);
    await app.worker().start();
    assert.equal(await within((await echo.delay("hi")).get(), 5_000, "a task over the node"), "hi");
  });
});

describe("documented: heartbeats (docs/protocol.md)", () => {
  it("closes a connection that sends nothing for three heartbeat intervals, saying why", async (t) => {
    const logs: string[] = [];
    const node = await BrokerNode.start({ port: 0, heartbeatMs: 50, log: (line) => logs.push(line) });
    t.after(() => node.stop());
    const codec = new FrameCodec();
    const socket = connect({ host: "127.0.0.1", port: node.address.port });
    t.after(() => socket.destroy());
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.on("error", () => {});
    // Handshake, then silence: the node's pings go unanswered.
    const parser = new FrameParser(1 << 20, () => {});
    socket.on("data", (chunk: Buffer) => parser.push(chunk));
    await new Promise<void>((resolve) => socket.on("connect", () => resolve()));
    new FrameWriter(socket).send(FrameType.Hello, codec.encode({ version: PROTOCOL_VERSION, name: "silent" }));
    const opened = Date.now();
    await within(closed, 5_000, "the node to close the silent connection");
    assert.ok(Date.now() - opened >= 150, `closed after ${Date.now() - opened} ms, before three intervals`);
    assert.ok(
      logs.some((line) =>
        /silent \(connection \d+\) closed: no frame from the client for \d+ ms \(heartbeat timeout\)/.test(line),
      ),
      logs.join("\n"),
    );
  });
});
