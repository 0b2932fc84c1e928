/**
 * Signed mode against an attacker who can use the broker and the result
 * store (no node token, or the node's data directory) but holds no trusted
 * key: each test plays one attack of docs/security.md and checks that it no
 * longer steers what runs.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Codec } from "../../broker/codec.ts";
import { EmbeddedBroker } from "../../broker/embedded/embedded-broker.ts";
import type { Delivery, Envelope } from "../../broker/envelope.ts";
import type { Consumer, Transport } from "../../broker/transport.ts";
import { chain, chord, group } from "../../dsl/combinators.ts";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { OperationNotPermittedError } from "../../broker/node/protocol.ts";
import { startFullNode } from "../full-node.ts";
import { createApp, type App, type AppOptions } from "../app.ts";
import { serveRateLimits } from "../rate-limit/node-rate-limit-service.ts";
import { serveResults } from "../results/result-service.ts";
import { RemoteTaskError } from "../errors.ts";
import { MemoryResultStore } from "../results/result-store.ts";
import { deferred, eventually } from "../test-support.ts";
import { scaled } from "../../tests/support/waits.ts";
import { generateBoxKey } from "./payload-box.ts";
import { writeKeyPair } from "./signing-keys.ts";

const dir = mkdtempSync(join(tmpdir(), "celerity-attacks-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const codec = new Codec();

const keyRing = () => {
  const ring = join(dir, `ring-${++n}`);
  const producer = writeKeyPair(join(ring, "producer"));
  const worker = writeKeyPair(join(ring, "worker"));
  return { ring, producer, worker, trusted: [join(ring, "*.pub")] };
};

/** A deployment on one embedded broker and result store, every publish recorded, and what ran with which arguments. */
const deployment = (encryption?: Uint8Array) => {
  const inner = new EmbeddedBroker();
  const published: Envelope[] = [];
  const broker: Transport = Object.create(inner, {
    publish: {
      value: (envelope: Envelope, options?: unknown) => (
        published.push(envelope), inner.publish(envelope, options as never)
      ),
    },
    close: { value: async () => {} },
  });
  const results = new MemoryResultStore();
  const logs: string[] = [];
  const apps: App[] = [];
  const ran: { task: string; args: unknown[] }[] = [];
  const keys = keyRing();
  const app = (role: "producer" | "worker", options: Omit<AppOptions, "broker" | "results"> = {}) => {
    const created = createApp({
      broker,
      results,
      log: (line) => logs.push(line),
      signing: {
        key: keys[role].secretPath,
        trusted: keys.trusted,
        ...(encryption !== undefined ? { encryption: [encryption] } : {}),
      },
      ...options,
    });
    apps.push(created);
    const record =
      <A extends unknown[], R>(name: string, fn: (...args: A) => R) =>
      (...args: A): R => {
        ran.push({ task: name, args });
        return fn(...args);
      };
    return {
      app: created,
      add: created.task(
        "add",
        record("add", (x: number, y: number) => x + y),
      ),
      tsum: created.task(
        "tsum",
        record("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0)),
      ),
      echo: created.task(
        "echo",
        record("echo", (text: string) => text),
      ),
      rm: created.task(
        "rm",
        record("rm", (path: string) => `removed ${path}`),
      ),
    };
  };
  /** A consumer of `queue` that is no worker: it takes deliveries and holds them. */
  const capture = async (prefetch = 1_000, queue = "celery") => {
    const held: Delivery[] = [];
    const consumer: Consumer = await inner.consume(queue, (delivery) => void held.push(delivery), { prefetch });
    return { held, consumer };
  };
  const close = async () => {
    for (const a of apps) await a.close();
    await inner.close();
  };
  return { inner, broker, results, published, logs, ran, keys, app, capture, close };
};

const rejectsAsSignatureError = async (promise: Promise<unknown>, pattern: RegExp) => {
  const error = await promise.then(
    (value) => assert.fail(`expected a SignatureError, got the value ${JSON.stringify(value)}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof RemoteTaskError, String(error));
  assert.equal(error.remote.name, "SignatureError", error.message);
  assert.match(error.message, pattern);
};

describe("signed mode against an attacker with broker access", () => {
  it("a chain's next step never runs with a result the attacker wrote for the step before", async () => {
    const d = deployment();
    const producer = d.app("producer");
    const worker = d.app("worker");
    const thief = await d.capture();
    const r = await chain(producer.echo.s("/tmp/scratch"), producer.rm.s()).apply();
    await eventually(() => thief.held.length === 1, 2_000, "step 1 held by the competing consumer");
    const step1 = thief.held[0].envelope.id;
    await d.results.complete(step1, "echo", { state: "SUCCESS", value: codec.encode("/") });
    await worker.app.worker().start();
    await thief.consumer.cancel(); // step 1 goes back, redelivered, and finds its result "recorded"
    await rejectsAsSignatureError(producer.app.result(step1).get({ timeout: 5_000 }), /cannot be trusted.*not signed/);
    await assert.rejects(r.get({ timeout: 5_000 }), /SignatureError/);
    assert.deepEqual(
      d.ran.filter((run) => run.task === "rm"),
      [],
    );
    await d.close();
  });

  it("a chord callback is never built from header results the attacker wrote", async () => {
    const d = deployment();
    const producer = d.app("producer");
    const worker = d.app("worker");
    const thief = await d.capture();
    const r = await chord(
      group(producer.add.s(1, 1), producer.add.s(2, 2), producer.add.s(3, 3)),
      producer.tsum.s(),
    ).apply();
    await eventually(() => thief.held.length === 3, 2_000, "the chord's header held by the competing consumer");
    // The attacker records the first member's "result" and lets the others run.
    await d.results.complete(thief.held[0].envelope.id, "add", { state: "SUCCESS", value: codec.encode(1e9) });
    await worker.app.worker().start();
    await thief.consumer.cancel();
    await assert.rejects(r.get({ timeout: 5_000 }), /SignatureError/);
    assert.deepEqual(
      d.ran.filter((run) => run.task === "tsum"),
      [],
    );
    await d.close();
  });

  it("get() reports a forged, moved or empty SUCCESS record as a SignatureError, never as a value", async () => {
    const d = deployment();
    const producer = d.app("producer");
    const worker = d.app("worker");
    await worker.app.worker().start();
    const real = await producer.echo.delay("genuine");
    assert.equal(await real.get({ timeout: 5_000 }), "genuine");
    const genuine = (await d.results.get(real.id))?.value as Uint8Array;

    const thief = await d.capture();
    await worker.app.close();
    const forged = await producer.echo.delay("x");
    const moved = await producer.echo.delay("y");
    const empty = await producer.echo.delay("z");
    await d.results.complete(forged.id, "echo", { state: "SUCCESS", value: codec.encode("forged") });
    await d.results.complete(moved.id, "echo", { state: "SUCCESS", value: genuine });
    await d.results.complete(empty.id, "echo", { state: "SUCCESS" } as never);
    await rejectsAsSignatureError(forged.get({ timeout: 5_000 }), /the value is not signed/);
    await rejectsAsSignatureError(moved.get({ timeout: 5_000 }), /forged, altered, or moved from another record/);
    await rejectsAsSignatureError(empty.get({ timeout: 5_000 }), /recorded SUCCESS with no value/);
    await thief.consumer.cancel();
    await d.close();
  });

  it("with encryption, a sealed result or sealed arguments moved into another record do not open", async () => {
    const d = deployment(generateBoxKey());
    const producer = d.app("producer");
    const worker = d.app("worker");
    await worker.app.worker().start();
    const real = await producer.echo.delay("genuine");
    assert.equal(await real.get({ timeout: 5_000 }), "genuine");
    const sealedResult = (await d.results.get(real.id))?.value as Uint8Array;
    await worker.app.close();

    const thief = await d.capture();
    const target = await producer.echo.delay("x");
    const other = await producer.echo.delay("y");
    await eventually(() => thief.held.length === 2, 2_000, "both messages held");
    await d.results.complete(target.id, "echo", { state: "SUCCESS", value: sealedResult });
    // The sealed arguments of a message (its body without the signature trailer) as a result value.
    const sealedArgs = Buffer.from(thief.held[1].envelope.body);
    await d.results.complete(other.id, "echo", { state: "SUCCESS", value: sealedArgs });
    await rejectsAsSignatureError(target.get({ timeout: 5_000 }), /cannot be trusted/);
    await rejectsAsSignatureError(other.get({ timeout: 5_000 }), /cannot be trusted/);
    await thief.consumer.cancel();
    await d.close();
  });

  it("runs a message at most once per worker process, even when a held original comes back redelivered while a copy runs", async () => {
    const d = deployment();
    const producer = d.app("producer");
    const worker = d.app("worker");
    const gate = deferred();
    let runs = 0;
    worker.app.task("slow", async (x: number) => (runs++, await gate.promise, x));
    const slow = producer.app.task("slow", (x: number) => x);
    const thief = await d.capture(1);
    const r = await slow.delay(7);
    await eventually(() => thief.held.length === 1, 2_000, "the original held by the competing consumer");
    await worker.app.worker({ concurrency: 4 }).start();
    await d.inner.publish(thief.held[0].envelope); // an exact copy: it runs
    await eventually(() => runs === 1, 2_000, "the copy to start");
    await thief.consumer.cancel(); // the original comes back, marked redelivered
    await eventually(async () => (await d.inner.stats("celery")).unacked === 2, 2_000, "both deliveries at the worker");
    gate.resolve();
    assert.equal(await r.get({ timeout: 5_000 }), 7);
    await eventually(
      async () => {
        const stats = await d.inner.stats("celery");
        return stats.unacked === 0 && stats.ready === 0;
      },
      5_000,
      "the redelivered original to be settled",
    );
    assert.equal(runs, 1);
    await d.close();
  });

  it("a handed-back message keeps its original signature and time: it is refused once the original's window closes", async () => {
    const d = deployment();
    const producer = d.app("producer");
    const windowed = createApp({
      broker: d.broker,
      results: d.results,
      log: (line) => d.logs.push(line),
      signing: { key: d.keys.worker.secretPath, trusted: d.keys.trusted, maxAgeMs: scaled(1_500) },
    });
    let runs = 0;
    windowed.task("limited", () => void runs++, { rateLimit: { rate: "1/h", burst: 1 } });
    const limited = producer.app.task("limited", () => undefined);
    await windowed.worker({ concurrency: 1, prefetch: 2 }).start();
    const [first, , third] = [await limited.delay(), await limited.delay(), await limited.delay()];
    await first.get({ timeout: 5_000 });
    // The third is handed back, again and again (the second is held for a token); the copies carry the producer's signature.
    await eventually(
      () => d.published.some((e) => e.id === third.id && e.headers["sig.handedBack"] === true),
      5_000,
      "a hand-back of the third",
    );
    const handedBack = d.published.filter((e) => e.id === third.id && e.headers["sig.handedBack"] === true);
    assert.ok(handedBack.every((e) => e.headers["sig.key"] === d.keys.worker.keyId));
    const original = d.published.find(
      (e) => e.id === third.id && e.headers["sig.handedBack"] === undefined,
    ) as Envelope;
    assert.equal(original.headers["sig.key"], d.keys.producer.keyId);
    await eventually(
      async () =>
        (await d.inner.deadLetters("celery.dlq")).some(
          (letter) =>
            letter.envelope.id === third.id && /handed back: signed \d+ ms ago, outside the window/.test(letter.reason),
        ),
      scaled(10_000),
      "the handed-back copy to be refused once the original's window closed",
    );
    await rejectsAsSignatureError(third.get({ timeout: 5_000 }), /outside the window/);
    assert.equal(runs, 1);
    await windowed.close();
    await d.close();
  });

  it("a worker refuses a signed message that reaches its queue through a binding its app did not make", async () => {
    const d = deployment();
    const producer = d.app("producer");
    const worker = d.app("worker");
    const auditor = d.app("worker");
    await worker.app.broker.declareQueue("celery");
    await worker.app.broker.declareExchange("tasks", "topic");
    await worker.app.broker.bindQueue("celery", "tasks", "add");
    await worker.app.worker().start();
    // The attacker adds a binding on the broker itself; the audit pool consumes what it receives.
    await d.inner.declareQueue("audit-only");
    await d.inner.bindQueue("audit-only", "tasks", "#");
    const auditWorker = auditor.app.worker({ queues: ["audit-only"] });
    await auditWorker.start();
    const r = await producer.add.applyAsync([2, 3], { exchange: "tasks", routingKey: "add" });
    assert.equal(await r.get({ timeout: 5_000 }), 5);
    await eventually(
      async () => (await d.inner.deadLetters("audit-only.dlq")).length === 1,
      5_000,
      "the copy on audit-only to be refused",
    );
    const [letter] = await d.inner.deadLetters("audit-only.dlq");
    assert.match(
      letter.reason,
      /signed for exchange 'tasks' with routing key 'add', which does not lead to queue 'audit-only'/,
    );
    assert.equal(d.ran.filter((run) => run.task === "add").length, 1);
    assert.equal(auditWorker.stats().refused, 1, "the refusal is counted in the worker's stats");
    await d.close();
  });

  it("with encryption, a keyed rate limit's key (derived from the arguments) reaches the node only as a keyed hash", async () => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    serveResults(node);
    const buckets = serveRateLimits(node);
    const seen: string[] = [];
    const take = buckets.take.bind(buckets);
    buckets.take = (id, limit, want) => (seen.push(id), take(id, limit, want));
    const keys = keyRing();
    const box = generateBoxKey();
    const signing = (role: "producer" | "worker") => ({
      key: keys[role].secretPath,
      trusted: keys.trusted,
      encryption: [box],
    });
    const producer = createApp({ broker: node.url, log: () => {}, signing: signing("producer") });
    const worker = createApp({ broker: node.url, log: () => {}, signing: signing("worker") });
    const rateLimit = { rate: "100/s", key: (card: string) => card };
    const charge = producer.task("charge", (card: string) => card.length, { rateLimit });
    worker.task("charge", (card: string) => card.length, { rateLimit });
    await worker.worker().start();
    try {
      assert.equal(await (await charge.delay("4111111111111111")).get({ timeout: 5_000 }), 16);
      assert.equal(await (await charge.delay("4111111111111111")).get({ timeout: 5_000 }), 16);
      assert.ok(seen.length >= 1, "the worker took its tokens from the node");
      assert.ok(
        seen.every((id) => !id.includes("4111")),
        seen.join(", "),
      );
      assert.equal(new Set(seen).size, 1, "the same key gives the same bucket");
    } finally {
      await worker.close();
      await producer.close();
      await node.stop();
    }
  });

  it("with an admin token on the node, a client holding only the token cannot revoke, throttle, bind or rewrite results", async () => {
    const full = await startFullNode({ port: 0, token: "client", adminToken: "admin", log: () => {} });
    const keys = keyRing();
    const signing = (role: "producer" | "worker") => ({ key: keys[role].secretPath, trusted: keys.trusted });
    const producer = createApp({ broker: full.url, token: "client", log: () => {}, signing: signing("producer") });
    const worker = createApp({ broker: full.url, token: "client", log: () => {}, signing: signing("worker") });
    const attacker = createApp({ broker: full.url, token: "client", log: () => {} });
    const admin = createApp({ broker: full.url, token: "admin", log: () => {}, signing: signing("producer") });
    const add = producer.task("add", (x: number, y: number) => x + y);
    worker.task("add", (x: number, y: number) => x + y);
    try {
      await worker.worker().start(); // binds its control queue: open to clients
      const r = await add.delay(1, 2);
      assert.equal(await r.get({ timeout: 5_000 }), 3);
      const permitted = (op: string) => (error: unknown) =>
        error instanceof OperationNotPermittedError && error.op === op;
      await assert.rejects(attacker.revoke([r.id]), permitted("revoke"));
      await assert.rejects(attacker.control.rateLimit("add", "1/h"), permitted("rate.set"));
      await assert.rejects(attacker.broker.bindQueue("audit-only", "celery", "#"), permitted("bindQueue"));
      await assert.rejects(attacker.result(r.id).forget(), permitted("results.forget"));
      assert.equal(await r.get({ timeout: 5_000 }), 3);
      // The administrator can.
      await admin.revoke([r.id]);
      await admin.result(r.id).forget();
    } finally {
      for (const app of [producer, worker, attacker, admin]) await app.close();
      await full.stop();
    }
  });

  it("a worker acts only on revocations a trusted key signed: a forged one neither aborts nor revokes a task", async () => {
    const d = deployment();
    const producer = d.app("producer");
    const worker = d.app("worker");
    const gates = [deferred(), deferred()];
    let aborted = 0;
    worker.app.task("wait", async function (this: { signal: AbortSignal }, i: number) {
      this.signal.addEventListener("abort", () => aborted++);
      await gates[i].promise;
      return i;
    });
    const wait = producer.app.task("wait", (i: number) => i);
    await worker.app.worker({ concurrency: 4 }).start();
    const forged = await wait.delay(0);
    const genuine = await wait.delay(1);
    await eventually(
      async () =>
        (await d.results.get(genuine.id))?.state === "STARTED" && (await d.results.get(forged.id))?.state === "STARTED",
      5_000,
      "both tasks to start",
    );
    // Someone with broker access revokes the first task on the broker itself, asking for it to be aborted.
    await d.inner.revoke([forged.id], { terminate: true });
    assert.equal(worker.app.broker.isRevoked(forged.id), false);
    gates[0].resolve();
    assert.equal(await forged.get({ timeout: 5_000 }), 0);
    assert.equal(aborted, 0);
    // The producer's own revocation is signed, and is honoured.
    await producer.app.revoke([genuine.id], { terminate: true });
    await eventually(() => aborted === 1, 5_000, "the signed revocation to abort the task");
    assert.equal(worker.app.broker.isRevoked(genuine.id), true);
    gates[1].resolve();
    await assert.rejects(genuine.get({ timeout: 5_000 }), /revoked/i);
    await d.close();
  });
});
