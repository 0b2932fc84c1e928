/**
 * Fault tests with real processes: broker nodes and workers run as
 * `celerity broker` / `celerity worker` child processes, and are killed with
 * SIGKILL (or stopped and restarted) while work is in flight; connections are
 * cut at random byte counts by a proxy. A few reproductions that need exact
 * control of when a client reconnects run the node in this process, behind a
 * gate the test opens and cuts. Every wait is on an event (a line a child
 * prints, a delivery, a result, a log line), bounded by a timeout that fails
 * with the children's output; every test stops every process it started,
 * even when it fails.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { Delivery, Envelope } from "../broker/envelope.ts";
import { ConnectionLostError } from "../broker/node/client/node-client.ts";
import { BrokerNode } from "../broker/node/node-server.ts";
import { NodeTransport } from "../broker/node/client/node-transport.ts";
import type { Consumer } from "../broker/transport.ts";
import { chain, chord } from "../dsl/combinators.ts";
import { createApp, type App } from "../runtime/app.ts";
import { RemoteResultStore } from "../runtime/results/remote-result-store.ts";
import { serveResults } from "../runtime/results/result-service.ts";
import { CuttingProxy } from "./support/cutting-proxy.ts";
import { Scope } from "./support/scope.ts";
import { seeded } from "./support/seeded-random.ts";
import { deferred, within } from "./support/waits.ts";
import { celerity, nodeProcess, START_TIMEOUT_MS, tails, type WatchedProcess } from "./support/watched-process.ts";

const FAULT_APP = fileURLToPath(new URL("./fixtures/fault-app.ts", import.meta.url));
const SLOW_DISK_BROKER = fileURLToPath(new URL("./fixtures/slow-disk-broker.ts", import.meta.url));

// ---------------------------------------------------------------------------
// Helpers: brokers and workers as processes, a gate in front of a node.

/** Resolve once `read()` gives `expected` (a state written by another process lands a moment later), or fail naming what was seen. */
const until = async <T>(read: () => Promise<T>, expected: T, ms: number, what: string): Promise<void> => {
  const deadline = Date.now() + ms;
  let seen = await read();
  while (seen !== expected) {
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${ms} ms waiting for ${what} to be ${String(expected)}; last seen ${String(seen)}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 10));
    seen = await read();
  }
};

/** A `celerity broker` process; resolves once it listens (the url is parsed from its log line). */
const startBroker = async (
  scope: Scope,
  name: string,
  options: { dataDir?: string; port?: number; slowDisk?: boolean } = {},
) => {
  const args = ["--port", String(options.port ?? 0)];
  if (options.dataDir !== undefined) args.push("--data-dir", options.dataDir);
  const child = options.slowDisk
    ? nodeProcess(name, ["--import", "tsx", SLOW_DISK_BROKER, ...args])
    : celerity(name, ["broker", ...args]);
  scope.defer(() => child.kill());
  const [, url] = await child.waitFor(/listening on (celerity:\/\/[\d.]+:\d+)/, START_TIMEOUT_MS, { stream: "stderr" });
  return { child, url };
};

/** A `celerity worker` process for the fault app; resolves once it consumes. */
const startWorker = async (
  scope: Scope,
  name: string,
  url: string,
  extra: readonly string[] = [],
): Promise<WatchedProcess> => {
  const child = celerity(name, [
    "worker",
    "--app",
    FAULT_APP,
    "--broker",
    url,
    "--concurrency",
    "1",
    "--name",
    name,
    ...extra,
  ]);
  scope.defer(() => child.kill());
  await child.waitFor(/consuming with concurrency/, START_TIMEOUT_MS, { stream: "stderr" });
  return child;
};

/** A producer app in this process; closed at the end of the scope. */
const producerApp = (scope: Scope, url: string, logs: string[]): App => {
  const app = createApp({ broker: url, log: (line) => logs.push(line) });
  scope.defer(() => app.close());
  return app;
};

const envelope = (id: string, queue = "q", bytes = 32): Envelope => ({
  id,
  exchange: "",
  routingKey: queue,
  priority: 0,
  headers: { task: "fault" },
  body: new TextEncoder().encode(`${id}:${"x".repeat(bytes)}`),
});

/** A TCP proxy to a node that the test can close (refusing new connections) and cut (dropping every open one). */
class Gate {
  open = true;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly targetPort: number) {}

  async start(): Promise<string> {
    const server = createServer((client) => {
      if (!this.open) return void client.destroy();
      const upstream = connect({ host: "127.0.0.1", port: this.targetPort });
      client.pipe(upstream).pipe(client);
      for (const [socket, other] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(socket);
        socket.on("error", () => {});
        socket.on("close", () => {
          this.sockets.delete(socket);
          other.destroy();
        });
      }
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return `celerity://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Drop every connection through the gate. */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** An in-process node whose log lines can be waited on (e.g. the node noticing a dropped connection). */
const nodeWithLog = async (scope: Scope) => {
  const lines: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: () => void }>();
  const node = await BrokerNode.start({
    port: 0,
    log: (line) => {
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(line)) {
          waiters.delete(waiter);
          waiter.resolve();
        }
      }
    },
  });
  scope.defer(() => node.stop());
  /** Resolves on the next log line matching `pattern`. */
  const nextLine = (pattern: RegExp) => new Promise<void>((resolve) => waiters.add({ pattern, resolve }));
  return { node, lines, nextLine };
};

/** Publish, retrying while the connection is lost mid-request (the node may or may not have applied the attempt). */
const publishRetrying = async (transport: NodeTransport, message: Envelope): Promise<number> => {
  for (let attempt = 1; ; attempt++) {
    try {
      await transport.publish(message);
      return attempt;
    } catch (error) {
      if (!(error instanceof ConnectionLostError)) throw error;
    }
  }
};

/**
 * Track `sending` (a publish or send of message `id`): `id` joins `confirmed`
 * once the node answers, and `onConfirmed` runs; a send cut off by the node's
 * death is neither (it may or may not have been applied).
 */
const confirmedUnlessCut = (
  sending: Promise<unknown>,
  id: string,
  confirmed: Set<string>,
  onConfirmed: () => void,
): Promise<void> =>
  sending.then(
    () => {
      confirmed.add(id);
      onConfirmed();
    },
    (error: unknown) => {
      if (!(error instanceof ConnectionLostError)) throw error;
    },
  );

/** SIGKILL the node, then wait for the sends that were in flight to settle. */
const killWithSendsInFlight = async (child: WatchedProcess, inFlight: Promise<void>[], what: string): Promise<void> => {
  const exit = await child.kill("SIGKILL");
  assert.equal(exit.signal, "SIGKILL");
  await within(Promise.all(inFlight), 5_000, what);
};

// ---------------------------------------------------------------------------

describe("fault tolerance across processes", { concurrency: false }, () => {
  it("hands the task of a worker killed with SIGKILL mid-task to another worker process, and get() returns its value", {
    timeout: 120_000,
  }, async () => {
    const scope = new Scope();
    try {
      const marker = join(scope.tempDir("celerity-faults-"), "hang-once.marker");
      const broker = await startBroker(scope, "broker");
      const [first, second] = await Promise.all([
        startWorker(scope, "w1", broker.url),
        startWorker(scope, "w2", broker.url),
      ]);
      const logs: string[] = [];
      const producer = producerApp(scope, broker.url, logs);
      const detail = tails(broker.child, first, second);

      const result = await producer.sendTask<string>("fault.hang-once", [marker]);
      // Whichever worker got the task prints that it started (and then hangs).
      const startedBy = (worker: WatchedProcess) =>
        worker.waitFor(/^started fault\.hang-once (\d+)$/, 10_000, { stream: "stdout", detail }).then(() => worker);
      const started = await Promise.race([startedBy(first), startedBy(second)]);
      const survivor = started === first ? second : first;
      // The worker prints before its STARTED write (on its own connection) has reached the node.
      await until(() => result.state(), "STARTED", 5_000, "the task's state");

      const exit = await started.kill("SIGKILL");
      assert.equal(exit.signal, "SIGKILL");
      const value = await within(
        result.get({ timeout: 10_000 }),
        12_000,
        "the surviving worker to complete the task",
        detail,
      );
      assert.equal(value, `finished by pid ${survivor.pid}`);
      assert.equal(await result.state(), "SUCCESS");
      // The survivor still serves new tasks.
      const next = await producer.sendTask<string>("fault.echo", ["after the kill"]);
      assert.equal(
        await within(next.get({ timeout: 5_000 }), 6_000, "an echo after the kill", detail),
        `after the kill from pid ${survivor.pid}`,
      );
    } finally {
      await scope.close();
    }
  });

  it("after a SIGKILL of the node, a restart on the same data dir delivers every confirmed message and none that was acked", {
    timeout: 120_000,
  }, async () => {
    const scope = new Scope();
    try {
      const dataDir = scope.tempDir("celerity-faults-");
      const first = await startBroker(scope, "broker-1", { dataDir });
      const producer = await NodeTransport.connect(first.url, { reconnectMinMs: 10_000 });
      scope.defer(() => producer.client.close());

      // 1. Confirmed messages.
      const confirmed = new Set<string>();
      const publishedIds = new Set<string>();
      await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const id = `c-${i}`;
          publishedIds.add(id);
          await producer.publish(envelope(id));
          confirmed.add(id);
        }),
      );
      assert.equal(confirmed.size, 200);

      // 2. Take 80 deliveries, ack 50 of them, leave 30 unacked.
      const delivered: Delivery[] = [];
      const eighty = deferred();
      const consumer: Consumer = await producer.consume(
        "q",
        (delivery) => {
          delivered.push(delivery);
          if (delivered.length === 80) eighty.resolve();
        },
        { prefetch: 80 },
      );
      await within(eighty.promise, 5_000, "80 deliveries", tails(first.child));
      const acked = new Set(delivered.slice(0, 50).map((d) => d.envelope.id));
      for (const delivery of delivered.slice(0, 50)) consumer.ack(delivery.deliveryTag);
      // Acks are one-way: a round trip proves the node applied them (it may already have refilled the consumer's window)...
      const stats = await producer.stats("q");
      assert.deepEqual(
        { held: stats.ready + stats.unacked, delayed: stats.delayed, consumers: stats.consumers },
        { held: 150, delayed: 0, consumers: 1 },
      );
      assert.ok(stats.unacked <= 80, `${stats.unacked} unacked, above the prefetch of 80`);
      // ...and a confirmed publish after them proves their records durable (the log makes records durable in order).
      await producer.publish(envelope("barrier"));
      confirmed.add("barrier");
      publishedIds.add("barrier");

      // 3. Publishes in flight when the node dies: whichever were confirmed must survive.
      const inFlight: Promise<void>[] = [];
      const enough = deferred();
      for (let i = 0; i < 300; i++) {
        const id = `u-${i}`;
        publishedIds.add(id);
        inFlight.push(
          confirmedUnlessCut(producer.publish(envelope(id)), id, confirmed, () => {
            if (confirmed.size >= 201 + 20) enough.resolve();
          }),
        );
      }
      await within(enough.promise, 5_000, "20 confirms of the in-flight publishes", tails(first.child));
      await killWithSendsInFlight(first.child, inFlight, "the in-flight publishes to settle");
      producer.client.close();

      // 4. Restart on the same data dir and drain.
      const second = await startBroker(scope, "broker-2", { dataDir });
      const drainer = await NodeTransport.connect(second.url);
      scope.defer(() => drainer.client.close());
      const { ready, unacked } = await drainer.stats("q");
      assert.equal(unacked, 0);
      const seen: string[] = [];
      const damaged: string[] = [];
      const drained = deferred();
      await drainer.consume(
        "q",
        (delivery) => {
          seen.push(delivery.envelope.id);
          if (new TextDecoder().decode(delivery.envelope.body) !== `${delivery.envelope.id}:${"x".repeat(32)}`)
            damaged.push(delivery.envelope.id);
          if (seen.length === ready) drained.resolve();
        },
        { prefetch: 1_000 },
      );
      if (ready === 0) drained.resolve();
      await within(
        drained.promise,
        5_000,
        `${ready} deliveries after the restart`,
        () => `got ${seen.length}\n${second.child.tail()}`,
      );
      assert.deepEqual(await drainer.stats("q"), { ready: 0, delayed: 0, unacked: ready, consumers: 1 });

      assert.deepEqual(damaged, [], "bodies changed across the restart");
      const seenSet = new Set(seen);
      assert.equal(seenSet.size, seen.length, "a message was delivered twice after the restart");
      const cameBack = seen.filter((id) => acked.has(id));
      assert.deepEqual(cameBack, [], "acked messages came back after the restart");
      const lost = [...confirmed].filter((id) => !acked.has(id) && !seenSet.has(id));
      assert.deepEqual(lost, [], "confirmed messages were lost");
      const unknown = seen.filter((id) => !publishedIds.has(id));
      assert.deepEqual(unknown, [], "messages never published were delivered");
      assert.ok(
        second.child.printed.some(({ line }) => /recovered \d+ messages/.test(line)),
        second.child.tail(),
      );
    } finally {
      await scope.close();
    }
  });

  it("acks answered by a later stats round trip survive a SIGKILL of the node", {
    timeout: 120_000,
  }, async () => {
    const scope = new Scope();
    try {
      const dataDir = scope.tempDir("celerity-faults-");
      // Every fsync takes 300 ms longer: a busy disk.
      const first = await startBroker(scope, "slow-disk-broker", { dataDir, slowDisk: true });
      const producer = await NodeTransport.connect(first.url, { reconnectMinMs: 10_000 });
      scope.defer(() => producer.client.close());
      const other = await NodeTransport.connect(first.url, { reconnectMinMs: 10_000 });
      scope.defer(() => other.client.close());
      await producer.declareQueue("q");
      await Promise.all(Array.from({ length: 100 }, (_, i) => producer.publish(envelope(`m-${i}`))));
      const delivered: Delivery[] = [];
      const all = deferred();
      const consumer = await producer.consume(
        "q",
        (delivery) => {
          delivered.push(delivery);
          if (delivered.length === 100) all.resolve();
        },
        { prefetch: 100 },
      );
      await within(all.promise, 5_000, "100 deliveries");
      // Another client's publish: once its stats round trip is answered, its record is being written and fsynced.
      const busy = other.publish(envelope("busy", "other")).catch(() => {});
      await other.stats("other");
      for (const delivery of delivered) consumer.ack(delivery.deliveryTag);
      // The round trip that proves the acks applied:
      assert.equal((await producer.stats("q")).unacked, 0);
      await first.child.kill("SIGKILL");
      await busy;
      producer.client.close();

      const second = await startBroker(scope, "broker-2", { dataDir });
      const checker = await NodeTransport.connect(second.url);
      scope.defer(() => checker.client.close());
      const { ready } = await checker.stats("q");
      assert.equal(ready, 0, `${ready} of the ${delivered.length} acked messages came back after the restart`);
    } finally {
      await scope.close();
    }
  });

  it("keeps publishing and consuming through connections cut at random points (every confirmed message is delivered)", {
    timeout: 120_000,
  }, async () => {
    const scope = new Scope();
    const SEED = 0x5eed_c0de;
    const random = seeded(SEED);
    try {
      const broker = await startBroker(scope, "broker");
      const port = Number(/:(\d+)$/.exec(broker.url)?.[1]);
      const received = new Map<string, number>();
      let deliveries = 0;
      const deliveriesAtCut: number[] = [];
      const producerProxy = new CuttingProxy(port, random, 4, { lateCutBytes: 5_000 });
      const consumerProxy = new CuttingProxy(port, random, 4, {
        lateCutBytes: 5_000,
        onCut: () => deliveriesAtCut.push(deliveries),
      });
      scope.defer(() => producerProxy.stop());
      scope.defer(() => consumerProxy.stop());
      const producerUrl = `celerity://127.0.0.1:${await producerProxy.start()}`;
      const consumerUrl = `celerity://127.0.0.1:${await consumerProxy.start()}`;
      const clientOptions = { reconnectMinMs: 5, reconnectMaxMs: 100, requestTimeoutMs: 10_000 };
      const producer = await NodeTransport.connect(producerUrl, clientOptions);
      scope.defer(() => producer.client.close());
      const consumerSide = await NodeTransport.connect(consumerUrl, clientOptions);
      scope.defer(() => consumerSide.client.close());

      const confirmed = new Set<string>();
      let waitingFor: { ids: ReadonlySet<string>; done: () => void } | undefined;
      const check = () => {
        if (waitingFor !== undefined && [...waitingFor.ids].every((id) => received.has(id))) waitingFor.done();
      };
      let consumer: Consumer | undefined;
      const handler = (delivery: Delivery) => {
        deliveries++;
        received.set(delivery.envelope.id, (received.get(delivery.envelope.id) ?? 0) + 1);
        // Acked on the next turn, as a worker does after running the task.
        const tag = delivery.deliveryTag;
        setImmediate(() => consumer?.ack(tag));
        check();
      };
      // The consume request itself may be cut: the node drops that consumer with the connection, so ask again.
      for (let attempt = 0; consumer === undefined; attempt++) {
        assert.ok(attempt < 20, "could not open the consumer through the proxy");
        consumer = await consumerSide.consume("q", handler, { prefetch: 20 }).catch((error: unknown) => {
          if (error instanceof ConnectionLostError) return undefined;
          throw error;
        });
      }

      const detail = () =>
        `seed ${SEED}; producer cuts ${producerProxy.cuts} at ${producerProxy.cutAt.join(",")}; consumer cuts ${consumerProxy.cuts} at ${consumerProxy.cutAt.join(",")}; ` +
        `confirmed ${confirmed.size}, distinct received ${received.size}, missing ${[...confirmed]
          .filter((id) => !received.has(id))
          .slice(0, 10)
          .join(",")}\n${broker.child.tail()}`;

      // Eight publishers, 300 messages.
      const N = 300;
      let next = 0;
      let retries = 0;
      await within(
        Promise.all(
          Array.from({ length: 8 }, async () => {
            while (next < N) {
              const id = `m-${next++}`;
              retries += (await publishRetrying(producer, envelope(id, "q", 100))) - 1;
              confirmed.add(id);
            }
          }),
        ),
        20_000,
        "every publish to be confirmed",
        detail,
      );
      const all = deferred();
      waitingFor = { ids: confirmed, done: all.resolve };
      check();
      await within(all.promise, 15_000, "every confirmed message to be delivered", detail);

      assert.equal(producerProxy.cuts, 4, `the producer's connection should have been cut 4 times (${detail()})`);
      assert.equal(consumerProxy.cuts, 4, `the consumer's connection should have been cut 4 times (${detail()})`);
      assert.ok(retries > 0 || producerProxy.cuts > 0);

      // After the last cut the consumer still receives: a message published now arrives.
      const sentinel = deferred();
      waitingFor = { ids: new Set(["sentinel"]), done: sentinel.resolve };
      await publishRetrying(producer, envelope("sentinel"));
      await within(sentinel.promise, 5_000, "the sentinel after the last cut", detail);
      for (const count of deliveriesAtCut)
        assert.ok(deliveries > count, `no delivery after the cut at delivery ${count}`);
    } finally {
      await scope.close();
    }
  });

  it("a worker process keeps consuming after the node process restarts", { timeout: 180_000 }, async () => {
    const scope = new Scope();
    try {
      const dataDir = scope.tempDir("celerity-faults-");
      const first = await startBroker(scope, "broker-1", { dataDir });
      const port = Number(/:(\d+)$/.exec(first.url)?.[1]);
      const worker = await startWorker(scope, "worker", first.url);
      const logs: string[] = [];
      const producer = producerApp(scope, first.url, logs);
      const before = await producer.sendTask<string>("fault.echo", ["before"]);
      assert.equal(
        await within(before.get({ timeout: 5_000 }), 6_000, "a task before the restart", tails(first.child, worker)),
        `before from pid ${worker.pid}`,
      );

      // Graceful stop (SIGTERM: the node closes every connection), then a new node process on the same port and data dir.
      const exit = await within(first.child.kill("SIGTERM"), 10_000, "the node to stop on SIGTERM", tails(first.child));
      assert.equal(exit.code, 0, first.child.tail());
      const second = await startBroker(scope, "broker-2", { dataDir, port });
      assert.equal(second.url, first.url);

      const detail = tails(second.child, worker);
      const after = await Promise.all(
        ["after-1", "after-2", "after-3"].map((value) => producer.sendTask<string>("fault.echo", [value])),
      );
      const values = await within(
        Promise.all(after.map((r) => r.get({ timeout: 15_000 }))),
        16_000,
        "tasks sent after the restart",
        detail,
      );
      assert.deepEqual(
        values,
        ["after-1", "after-2", "after-3"].map((value) => `${value} from pid ${worker.pid}`),
      );

      // And once more, killed this time.
      await second.child.kill("SIGKILL");
      const third = await startBroker(scope, "broker-3", { dataDir, port });
      const last = await producer.sendTask<string>("fault.echo", ["after-kill"]);
      assert.equal(
        await within(
          last.get({ timeout: 15_000 }),
          16_000,
          "a task after a SIGKILL restart",
          tails(third.child, worker),
        ),
        `after-kill from pid ${worker.pid}`,
      );
      assert.equal(worker.child.exitCode, null, "the worker process is still running");
    } finally {
      await scope.close();
    }
  });

  it("a transport consuming two queues keeps both consumers after a node restart that numbers consumers differently", {
    timeout: 60_000,
  }, async () => {
    const scope = new Scope();
    try {
      const dataDir = scope.tempDir("celerity-faults-");
      let node = await BrokerNode.start({ port: 0, dataDir, log: () => {} });
      scope.defer(() => node.stop());
      const port = node.address.port;
      // The worker reaches the node through a gate, so the test decides when it reconnects.
      const gate = new Gate(port);
      scope.defer(() => gate.stop());
      const worker = await NodeTransport.connect(await gate.start(), { reconnectMinMs: 10, reconnectMaxMs: 20 });
      scope.defer(() => worker.client.close());
      const seen: string[] = [];
      const arrivals = new Map<string, () => void>();
      const consumers: Record<string, Consumer> = {};
      for (const queue of ["first", "second"]) {
        consumers[queue] = await worker.consume(
          queue,
          (delivery) => {
            seen.push(`${queue}:${delivery.envelope.id}`);
            consumers[queue].ack(delivery.deliveryTag);
            arrivals.get(delivery.envelope.id)?.();
          },
          { prefetch: 10 },
        );
      }
      // Node consumer tags: first = ctag-1, second = ctag-2.
      gate.open = false;
      await node.stop();
      node = await BrokerNode.start({ port, dataDir, log: () => {} });
      // Another client consumes first on the new node and takes ctag-1; the worker's consumers become ctag-2 and ctag-3.
      const other = await NodeTransport.connect(node.url);
      scope.defer(() => other.client.close());
      await other.consume("elsewhere", () => {}, { prefetch: 1 });
      gate.open = true;
      await within(worker.stats("first"), 5_000, "the worker to reconnect");

      const wait = (id: string) => new Promise<void>((resolve) => arrivals.set(id, resolve));
      const toSecond = wait("to-second");
      const toFirst = wait("to-first");
      await other.publish(envelope("to-second", "second"));
      await other.publish(envelope("to-first", "first"));
      await within(toSecond, 3_000, "the delivery to the second queue's consumer", () => seen.join(","));
      await within(toFirst, 3_000, "the delivery to the first queue's consumer", () => `seen ${seen.join(",")}`);
      assert.deepEqual(seen.sort(), ["first:to-first", "second:to-second"]);
    } finally {
      await scope.close();
    }
  });

  it("acks made by a consumer's handler for deliveries that arrive while the transport reopens its consumers reach the node", {
    timeout: 60_000,
  }, async () => {
    const scope = new Scope();
    try {
      const { node, nextLine } = await nodeWithLog(scope);
      const gate = new Gate(node.address.port);
      scope.defer(() => gate.stop());
      const consumerSide = await NodeTransport.connect(await gate.start(), { reconnectMinMs: 10, reconnectMaxMs: 20 });
      scope.defer(() => consumerSide.client.close());
      const producer = await NodeTransport.connect(node.url);
      scope.defer(() => producer.client.close());
      const seen: string[] = [];
      let wake = (): void => {};
      const consumer: Consumer = await consumerSide.consume(
        "q",
        (delivery) => {
          seen.push(delivery.envelope.id);
          consumer.ack(delivery.deliveryTag);
          wake();
        },
        { prefetch: 10 },
      );
      // The connection drops; three messages are queued before the consumer gets back.
      const noticed = nextLine(/closed/);
      gate.open = false;
      gate.cut();
      await within(noticed, 5_000, "the node to notice the dropped connection");
      for (const id of ["m-1", "m-2", "m-3"]) await producer.publish(envelope(id));
      const three = new Promise<void>((resolve) => (wake = () => void (seen.length === 3 && resolve())));
      gate.open = true;
      await within(three, 5_000, "the three deliveries after the reconnection", () => `seen ${seen.join(",")}`);
      // A round trip on the consumer's connection: every ack it sent before is applied.
      await consumerSide.stats("q");
      assert.deepEqual(
        await producer.stats("q"),
        { ready: 0, delayed: 0, unacked: 0, consumers: 1 },
        "the acks were dropped",
      );
    } finally {
      await scope.close();
    }
  });

  it("a worker keeps running tasks that ignore their result after its connection to the node drops", {
    timeout: 60_000,
  }, async () => {
    const scope = new Scope();
    try {
      const { node, nextLine } = await nodeWithLog(scope);
      serveResults(node);
      const gate = new Gate(node.address.port);
      scope.defer(() => gate.stop());
      const logs: string[] = [];
      const workerApp = createApp({ broker: await gate.start(), log: (line) => logs.push(line) });
      scope.defer(() => workerApp.close({ timeout: 100 }));
      const ran = new Set<number>();
      let waiting: { count: number; done: () => void } | undefined;
      workerApp.task(
        "fault.fire",
        (n: number) => {
          ran.add(n);
          if (waiting !== undefined && ran.size >= waiting.count) waiting.done();
        },
        { ignoreResult: true },
      );
      await workerApp.worker({ concurrency: 1 }).start();
      const producer = producerApp(scope, node.url, logs);
      const ranAll = (count: number) => new Promise<void>((resolve) => (waiting = { count, done: resolve }));

      const first = ranAll(1);
      await producer.sendTask("fault.fire", [0], { ignoreResult: true });
      await within(first, 5_000, "the task before the drop");
      // A round trip on the worker's connection: its ack is applied before the drop.
      await workerApp.broker.stats("celery");
      assert.equal((await producer.broker.stats("celery")).unacked, 0);
      const noticed = nextLine(/closed/);
      gate.open = false;
      gate.cut();
      // Sent once the node has dropped the worker's consumer: they reach the worker only after it reconnects.
      await within(noticed, 5_000, "the node to notice the dropped connection");
      const rest = ranAll(11);
      for (let n = 1; n <= 10; n++) await producer.sendTask("fault.fire", [n], { ignoreResult: true });
      gate.open = true;
      await within(rest, 3_000, "the ten tasks sent while the worker was disconnected", () => {
        const missing = Array.from({ length: 10 }, (_, i) => i + 1).filter((n) => !ran.has(n));
        return `never ran: ${missing.join(",")}\n${logs.join("\n")}`;
      });
      // Every task ran; a round trip on the worker's connection, and the node must hold none of them unacked.
      await workerApp.broker.stats("celery");
      const { unacked } = await producer.broker.stats("celery");
      assert.equal(
        unacked,
        0,
        `the node still counts ${unacked} of the tasks the worker ran as unacked: their acks were dropped`,
      );
    } finally {
      await scope.close();
    }
  });
});

describe("durable results across a node crash", { concurrency: false }, () => {
  it("a chain and a chord in flight when the node is killed with SIGKILL finish with the right result after it restarts, and a result stored before the crash is still there", {
    timeout: 180_000,
  }, async () => {
    const scope = new Scope();
    try {
      const dataDir = scope.tempDir("celerity-faults-");
      const gate = join(scope.tempDir("celerity-faults-"), "gate");
      const broker = await startBroker(scope, "broker", { dataDir });
      const port = Number(/:(\d+)$/.exec(broker.url)?.[1]);
      const worker = await startWorker(scope, "w1", broker.url, ["--concurrency", "4"]);
      const logs: string[] = [];
      const producer = producerApp(scope, broker.url, logs);
      // The producer's own definitions only give the signatures their types; the worker process runs them.
      const add = producer.task("fault.add", (a: number, b: number) => a + b);
      const tsum = producer.task("fault.tsum", (xs: number[]) => xs.reduce((sum, x) => sum + x, 0));
      const waitFile = producer.task("fault.wait-file", (value: number, _path: string) => value);
      const detail = tails(broker.child, worker);

      const before = await producer.sendTask<string>("fault.echo", ["before the crash"]);
      assert.equal(
        await within(before.get({ timeout: 10_000 }), 12_000, "the task before the crash", detail),
        `before the crash from pid ${worker.pid}`,
      );

      const chained = await chain(add.s(1, 2), waitFile.s(gate), add.s(10)).apply();
      const chorded = await chord([add.s(1, 1), waitFile.s(5, gate)], tsum.s()).apply();
      // Both waiting steps are running: the chain's first step is done and its graph, like the chord's, is stored.
      await within(
        Promise.all([
          worker.waitFor(/^waiting 3$/, 15_000, { stream: "stdout" }),
          worker.waitFor(/^waiting 5$/, 15_000, { stream: "stdout" }),
        ]),
        15_000,
        "both workflows to reach their waiting step",
        detail,
      );

      assert.equal((await broker.child.kill("SIGKILL")).signal, "SIGKILL");
      writeFileSync(gate, "");
      const restarted = await startBroker(scope, "broker-restarted", { dataDir, port });
      const after = tails(restarted.child, worker);
      assert.equal(
        await within(chained.get({ timeout: 30_000 }), 32_000, "the chain to finish after the restart", after),
        13,
      );
      assert.equal(
        await within(chorded.get({ timeout: 30_000 }), 32_000, "the chord to finish after the restart", after),
        7,
      );
      // A process that connects only now reads the result stored before the crash.
      const reader = producerApp(scope, restarted.url, logs);
      assert.equal(
        await within(
          reader.result<string>(before.id).get({ timeout: 10_000 }),
          12_000,
          "the result stored before the crash",
          after,
        ),
        `before the crash from pid ${worker.pid}`,
      );
      assert.match(restarted.child.output, /results: recovered \d+ task results, 2 workflow graphs/);
    } finally {
      await scope.close();
    }
  });
});

describe("sends and results in one log across a node crash", { concurrency: false }, () => {
  it("every send confirmed before a SIGKILL of the node has both its message and its PENDING record after the restart", {
    timeout: 60_000,
  }, async () => {
    const scope = new Scope();
    try {
      const dataDir = scope.tempDir("celerity-faults-");
      const first = await startBroker(scope, "broker-1", { dataDir });
      const producer = await NodeTransport.connect(first.url, { reconnectMinMs: 10_000 });
      scope.defer(() => producer.client.close());
      await producer.declareQueue("q");
      const results = new RemoteResultStore(producer.client);
      const confirmed = new Set<string>();
      const enough = deferred();
      const inFlight: Promise<void>[] = [];
      for (let i = 0; i < 400; i++) {
        const id = `s-${i}`;
        const sending = results.send([{ envelope: envelope(id), record: [id, "fault.echo", "PENDING", null] }], false);
        inFlight.push(
          confirmedUnlessCut(sending, id, confirmed, () => {
            if (confirmed.size >= 50) enough.resolve();
          }),
        );
      }
      await within(enough.promise, 10_000, "50 confirmed sends", tails(first.child));
      await killWithSendsInFlight(first.child, inFlight, "the sends in flight to settle");
      producer.client.close();

      const second = await startBroker(scope, "broker-2", { dataDir });
      const reader = await NodeTransport.connect(second.url);
      scope.defer(() => reader.client.close());
      const store = new RemoteResultStore(reader.client);
      const { ready } = await reader.stats("q");
      const queued = new Set<string>();
      const drained = deferred();
      await reader.consume(
        "q",
        (delivery) => {
          queued.add(delivery.envelope.id);
          if (queued.size === ready) drained.resolve();
        },
        { prefetch: 1_000 },
      );
      if (ready === 0) drained.resolve();
      await within(drained.promise, 5_000, `${ready} deliveries after the restart`, tails(second.child));
      const noMessage = [...confirmed].filter((id) => !queued.has(id));
      assert.deepEqual(noMessage, [], "confirmed sends whose message was lost");
      const noRecord: string[] = [];
      for (const id of confirmed) if ((await store.get(id))?.state !== "PENDING") noRecord.push(id);
      assert.deepEqual(noRecord, [], "confirmed sends whose PENDING record was lost");
    } finally {
      await scope.close();
    }
  });
});
