import assert from "node:assert/strict";
import { mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { EmbeddedBroker } from "../../broker/embedded/embedded-broker.ts";
import type { Envelope } from "../../broker/envelope.ts";
import type { Transport } from "../../broker/transport.ts";
import { chain, chord, group } from "../../dsl/combinators.ts";
import { createApp, type App, type AppOptions } from "../app.ts";
import { RemoteTaskError } from "../errors.ts";
import { MemoryResultStore } from "../results/result-store.ts";
import { deferred, eventually } from "../test-support.ts";
import { VirtualClock } from "../testing/virtual-clock.ts";
import { generateBoxKey } from "./payload-box.ts";
import { SigningConfigError } from "./signing-errors.ts";
import { readSecretKey, writeKeyPair } from "./signing-keys.ts";

const dir = mkdtempSync(join(tmpdir(), "celerity-signed-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A key ring directory with a producer's and a worker's key pair. */
const keyRing = () => {
  const ring = join(dir, `ring-${++n}`);
  const producer = writeKeyPair(join(ring, "producer"));
  const worker = writeKeyPair(join(ring, "worker"));
  return { ring, producer, worker, trusted: [join(ring, "*.pub")] };
};

/** One embedded broker and result store shared by several apps (each standing for a process), every publish recorded. */
const deployment = () => {
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
  let ran = 0;
  const app = (options: Omit<AppOptions, "broker" | "results"> = {}) => {
    const created = createApp({ broker, results, log: (line) => logs.push(line), ...options });
    apps.push(created);
    const tasks = {
      add: created.task("add", (x: number, y: number) => {
        ran++;
        return x + y;
      }),
      tsum: created.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0)),
      echo: created.task("echo", (text: string) => text),
    };
    return { app: created, ...tasks };
  };
  const close = async () => {
    for (const a of apps) await a.close();
    await inner.close();
  };
  return { inner, broker, results, published, logs, app, close, ran: () => ran };
};

const refusedWith = async (result: { get(options: { timeout: number }): Promise<unknown> }, pattern: RegExp) => {
  const error = await result.get({ timeout: 5_000 }).then(
    () => assert.fail("expected the task to be refused"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof RemoteTaskError, String(error));
  assert.equal(error.remote.name, "SignatureError");
  assert.match(error.message, pattern);
};

describe("signed mode", () => {
  it("runs tasks and canvases signed by a trusted key, and the worker signs the steps it sends with its own key", async () => {
    const keys = keyRing();
    const d = deployment();
    const producer = d.app({ signing: { key: keys.producer.secretPath, trusted: keys.trusted } });
    const worker = d.app({ signing: { key: keys.worker.secretPath, trusted: keys.trusted } });
    await worker.app.worker({ concurrency: 4 }).start();
    assert.equal(await (await producer.add.delay(2, 2)).get({ timeout: 5_000 }), 4);
    assert.equal(
      await (await chain(producer.add.s(1, 1), producer.add.s(1), producer.add.s(1)).apply()).get({ timeout: 5_000 }),
      4,
    );
    assert.equal(
      await (await chord(group(producer.add.s(1, 1), producer.add.s(2, 2)), producer.tsum.s()).apply()).get({
        timeout: 5_000,
      }),
      6,
    );
    const signers = new Set(d.published.map((e) => e.headers["sig.key"]));
    assert.deepEqual([...signers].sort(), [keys.producer.keyId, keys.worker.keyId].sort());
    assert.deepEqual(await d.inner.deadLetters("celery.dlq"), []);
    await d.close();
  });

  it("never runs an unsigned message: dead-letters it with the reason, logs key and task, and fails its result", async () => {
    const keys = keyRing();
    const d = deployment();
    const plain = d.app();
    const worker = d.app({ signing: { key: keys.worker.secretPath, trusted: keys.trusted } });
    await worker.app.worker().start();
    await refusedWith(
      await plain.add.delay(2, 2),
      /task 'add', key \(none\)\) was refused and not run: the message is not signed/,
    );
    assert.equal(d.ran(), 0);
    const [letter] = await d.inner.deadLetters("celery.dlq");
    assert.match(letter.reason, /not signed/);
    assert.ok(
      d.logs.some((line) => /refused to the dead-letter queue of 'celery'.*task 'add', key \(none\)/.test(line)),
      d.logs.join("\n"),
    );
    await d.close();
  });

  it("never runs a message signed by a key it does not trust", async () => {
    const keys = keyRing();
    const stranger = writeKeyPair(join(dir, `stranger-${++n}`));
    const d = deployment();
    const producer = d.app({ signing: { key: stranger.secretPath } });
    const worker = d.app({ signing: { key: keys.worker.secretPath, trusted: keys.trusted } });
    await worker.app.worker().start();
    await refusedWith(
      await producer.add.delay(1, 2),
      new RegExp(`key ${stranger.keyId}\\) was refused and not run: key ${stranger.keyId} is not trusted`),
    );
    assert.equal(d.ran(), 0);
    await d.close();
  });

  it("refuses a replayed copy of a message it already ran", async () => {
    const keys = keyRing();
    const d = deployment();
    const producer = d.app({ signing: { key: keys.producer.secretPath, trusted: keys.trusted } });
    const worker = d.app({ signing: { key: keys.worker.secretPath, trusted: keys.trusted } });
    await worker.app.worker().start();
    assert.equal(await (await producer.add.delay(20, 22)).get({ timeout: 5_000 }), 42);
    const original = d.published.find((e) => e.headers.task === "add") as Envelope;
    await d.inner.publish(original);
    await eventually(
      async () => (await d.inner.deadLetters("celery.dlq")).length === 1,
      5_000,
      "the replay to be dead-lettered",
    );
    const [letter] = await d.inner.deadLetters("celery.dlq");
    assert.match(letter.reason, /a replay/);
    assert.equal(d.ran(), 1);
    await d.close();
  });

  it("refuses a message signed longer ago than the window, measured on the app's clock", async () => {
    const keys = keyRing();
    const d = deployment();
    const clock = new VirtualClock();
    const window = { trusted: keys.trusted, maxAgeMs: 60_000 };
    const producer = d.app({ clock, signing: { key: keys.producer.secretPath, ...window } });
    const worker = d.app({ clock, signing: { key: keys.worker.secretPath, ...window } });
    const late = await producer.add.delay(1, 1);
    await clock.advance("61s");
    await worker.app.worker().start();
    await refusedWith(late, /was refused and not run: signed 61000 ms ago, outside the window of 60000 ms/);
    assert.equal(await (await producer.add.delay(2, 2)).get({ timeout: 5_000 }), 4, "a message signed now runs");
    assert.equal(d.ran(), 1);
    await d.close();
  });

  it("refuses to start a worker with no trusted keys, and to publish without a signing key", async () => {
    const keys = keyRing();
    const d = deployment();
    const keyOnly = d.app({ signing: { key: keys.producer.secretPath } });
    await assert.rejects(
      keyOnly.app.worker().start(),
      (e: unknown) => e instanceof SigningConfigError && /needs trusted public keys/.test(e.message),
    );
    const trustOnly = d.app({ signing: { trusted: keys.trusted } });
    await assert.rejects(trustOnly.add.delay(1, 1), /no signing key \(signing\.key\)/);
    await d.close();
  });

  it("fails createApp on unusable signing options, naming what is wrong", () => {
    const keys = keyRing();
    assert.throws(() => createApp({ signing: {} }), /needs a key to sign with/);
    assert.throws(
      () => createApp({ signing: { key: join(keys.ring, "nope.secret") } }),
      /cannot read an ed25519 secret key/,
    );
    assert.throws(() => createApp({ signing: { trusted: [join(keys.ring, "*.pem")] } }), /matches no file/);
    assert.throws(
      () => createApp({ signing: { key: keys.producer.secretPath, maxAgeMs: -1 } }),
      /maxAgeMs must be a positive number/,
    );
  });

  it("rotates keys: both trusted during the change, then a message signed by the retired key is refused", async () => {
    const keys = keyRing();
    const next = writeKeyPair(join(keys.ring, "producer-2"));
    const d = deployment();
    // Producers trust the workers' key: the results they read are signed with it.
    const oldProducer = d.app({ signing: { key: keys.producer.secretPath, trusted: [keys.worker.publicPath] } });
    const newProducer = d.app({ signing: { key: next.secretPath, trusted: [keys.worker.publicPath] } });
    const during = d.app({ signing: { key: keys.worker.secretPath, trusted: keys.trusted } });
    const duringWorker = during.app.worker();
    await duringWorker.start();
    assert.equal(await (await oldProducer.add.delay(1, 1)).get({ timeout: 5_000 }), 2);
    assert.equal(await (await newProducer.add.delay(2, 2)).get({ timeout: 5_000 }), 4);
    await duringWorker.stop();
    unlinkSync(keys.producer.publicPath); // retire the old key, then restart the workers
    const afterRotation = d.app({ signing: { key: keys.worker.secretPath, trusted: keys.trusted } });
    await afterRotation.app.worker().start();
    assert.equal(await (await newProducer.add.delay(3, 3)).get({ timeout: 5_000 }), 6);
    await refusedWith(await oldProducer.add.delay(4, 4), /is not trusted/);
    await d.close();
  });

  it("with encryption, the broker and the result store see neither arguments nor results in the clear", async () => {
    const keys = keyRing();
    const box = generateBoxKey();
    const d = deployment();
    const producer = d.app({ signing: { key: keys.producer.secretPath, trusted: keys.trusted, encryption: [box] } });
    const worker = d.app({ signing: { key: keys.worker.secretPath, trusted: keys.trusted, encryption: [box] } });
    await worker.app.worker().start();
    const r = await producer.echo.delay("top secret argument");
    assert.equal(await r.get({ timeout: 5_000 }), "top secret argument");
    const sent = d.published.find((e) => e.id === r.id) as Envelope;
    assert.equal(Buffer.from(sent.body).includes("top secret"), false);
    const stored = await d.results.get(r.id);
    assert.equal(Buffer.from(stored?.value as Uint8Array).includes("top secret"), false);
    await d.close();
  });

  it("with encryption, refuses a message that is not encrypted, or sealed with a key it does not hold", async () => {
    const keys = keyRing();
    const d = deployment();
    const clear = d.app({ signing: { key: keys.producer.secretPath } });
    const otherKey = d.app({ signing: { key: keys.producer.secretPath, encryption: [generateBoxKey()] } });
    const worker = d.app({
      signing: { key: keys.worker.secretPath, trusted: keys.trusted, encryption: [generateBoxKey()] },
    });
    await worker.app.worker().start();
    await refusedWith(await clear.echo.delay("x"), /not encrypted/);
    await refusedWith(await otherKey.echo.delay("x"), /encrypted with key [0-9a-f]{16}, which this app does not hold/);
    await d.close();
  });

  it("does not send the next step of a workflow whose graph was altered in the result store", async () => {
    const keys = keyRing();
    const d = deployment();
    const gate = deferred();
    const producer = d.app({ signing: { key: keys.producer.secretPath, trusted: keys.trusted } });
    const worker = d.app({ signing: { key: keys.worker.secretPath, trusted: keys.trusted } });
    worker.app.task("slow", async (x: number) => (await gate.promise, x));
    const slow = producer.app.task("slow", (x: number) => x);
    await worker.app.worker().start();
    const r = await chain(slow.s(1), producer.add.s(1)).apply();
    const workflow = (await d.results.get(r.id))?.workflow as string;
    const stored = (await d.results.graph(workflow)) as unknown as { signed: { body: Uint8Array } };
    stored.signed.body[stored.signed.body.length - 1] ^= 1;
    gate.resolve();
    await eventually(
      () =>
        d.logs.some((line) =>
          /workflow graph in the result store is not signed by a trusted key, or was altered/.test(line),
        ),
      5_000,
      "the refusal of the graph",
    );
    assert.equal(d.ran(), 0);
    await d.close();
  });

  it("takes keys as raw bytes as well as files", async () => {
    const keys = keyRing();
    const pair = readSecretKey(keys.producer.secretPath);
    const d = deployment();
    const workerPair = readSecretKey(keys.worker.secretPath);
    const producer = d.app({ signing: { key: pair.secretKey, trusted: [workerPair.publicKey] } });
    const worker = d.app({ signing: { key: workerPair.secretKey, trusted: [pair.publicKey] } });
    await worker.app.worker().start();
    assert.equal(await (await producer.add.delay(5, 5)).get({ timeout: 5_000 }), 10);
    await d.close();
  });
});
