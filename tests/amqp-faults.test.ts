/**
 * Fault tests on RabbitMQ with real worker processes (`celerity worker
 * --broker amqp://…`): a worker killed with SIGKILL mid-task, connections
 * cut by a proxy, and canvases of 1,000 steps across three workers. Results
 * live on a broker node in this process, shared by every process. Every wait
 * is on an event, bounded by a timeout that fails with the workers' output;
 * every process started is killed when the test ends, even when it fails.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { CutProxy, testVhost } from "../broker/amqp/amqp-test-broker.ts";
import { NodeClient } from "../broker/node/client/node-client.ts";
import { BrokerNode } from "../broker/node/node-server.ts";
import { chain, chord, group } from "../dsl/combinators.ts";
import { createApp, type App } from "../runtime/app.ts";
import { RemoteResultStore } from "../runtime/results/remote-result-store.ts";
import { serveResults } from "../runtime/results/result-service.ts";
import { scaled, within } from "./support/waits.ts";
import { celerity, START_TIMEOUT_MS, type WatchedProcess } from "./support/watched-process.ts";

const APP = fileURLToPath(new URL("./fixtures/amqp-app.ts", import.meta.url));

const server = await testVhost("faults");

/** A `celerity worker` process for the fault app, its results kept on the broker node at `resultsUrl`. */
const workerProcess = (name: string, brokerUrl: string, resultsUrl: string, concurrency = 4): WatchedProcess =>
  celerity(
    name,
    ["worker", "--app", APP, "--broker", brokerUrl, "--concurrency", String(concurrency), "--name", name],
    { env: { CELERITY_RESULTS_NODE: resultsUrl } },
  );

if ("skip" in server) {
  it("survives faults on RabbitMQ", { skip: server.skip }, () => {});
} else {
  after(() => server.dispose());

  /** A results node, a producer app, and a way to start workers; all stopped when the test ends. */
  const setup = async (t: TestContext) => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    serveResults(node);
    const client = new NodeClient(node.url, { name: "producer-results" });
    await client.start();
    const producer: App = createApp({ broker: server.url, results: new RemoteResultStore(client), log: () => {} });
    const workers: WatchedProcess[] = [];
    const dir = mkdtempSync(join(tmpdir(), "celerity-amqp-faults-"));
    t.after(async () => {
      await Promise.all(workers.map((worker) => worker.kill()));
      await producer.close();
      client.close();
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const start = async (count: number, brokerUrl = server.url): Promise<WatchedProcess[]> => {
      const started = Array.from({ length: count }, (_, i) =>
        workerProcess(`w${workers.length + i + 1}`, brokerUrl, node.url),
      );
      workers.push(...started);
      await Promise.all(started.map((worker) => worker.waitFor(/consuming with concurrency/, START_TIMEOUT_MS)));
      return started;
    };
    const tails = () => workers.map((worker) => worker.tail()).join("\n");
    return { producer, start, dir, tails };
  };

  describe("RabbitMQ faults", () => {
    it("runs every confirmed task once a worker is killed with SIGKILL mid-task: the task it held runs on another", {
      timeout: scaled(240_000),
    }, async (t) => {
      const { producer, start, dir, tails } = await setup(t);
      const [a, b] = await start(2);
      const hang = producer.task("amqp.hang-once", (_marker: string) => "unused");
      const echo = producer.task("amqp.echo", (value: string, _ms: number) => value);
      const held = await hang.delay(join(dir, "marker"));
      const batch = await Promise.all(Array.from({ length: 100 }, (_, i) => echo.delay(`e${i}`, 5)));
      const startedBy = (worker: WatchedProcess) =>
        worker.waitFor(/started amqp.hang-once (\d+)/, START_TIMEOUT_MS, { detail: tails });
      const started = await Promise.race([startedBy(a), startedBy(b)]);
      const victim = Number(started[1]) === a.pid ? a : b;
      const survivor = victim === a ? b : a;
      await victim.kill();
      assert.equal(
        await within(held.get({ timeout: scaled(60_000) }), scaled(65_000), "the killed worker's task", tails),
        `finished by pid ${survivor.pid}`,
      );
      const values = await within(
        Promise.all(batch.map((r) => r.get({ timeout: scaled(60_000) }))),
        scaled(65_000),
        "the batch",
        tails,
      );
      assert.deepEqual(
        values,
        Array.from({ length: 100 }, (_, i) => `e${i}`),
      );
    });

    it("loses no confirmed task when the workers' connections are cut, and the workers resume on their own", {
      timeout: scaled(240_000),
    }, async (t) => {
      const { producer, start, tails } = await setup(t);
      const proxy = await CutProxy.start(server.url);
      t.after(() => proxy.close());
      await start(2, proxy.url);
      const add = producer.task("amqp.add", (a: number, b: number) => a + b);
      const results = [];
      for (let round = 0; round < 4; round++) {
        // Cuts between rounds (the last two refusing reconnection for a while): every later round needs the workers back.
        if (round > 0) proxy.cut(round === 1 ? 0 : 300);
        for (let i = 0; i < 50; i++) results.push(await add.delay(round, i));
      }
      const values = await within(
        Promise.all(results.map((r) => r.get({ timeout: scaled(80_000) }))),
        scaled(85_000),
        "every task after the cuts",
        tails,
      );
      assert.deepEqual(
        values,
        Array.from({ length: 200 }, (_, k) => Math.floor(k / 50) + (k % 50)),
      );
    });

    it("runs a chain, a group and a chord of 1,000 steps each across three worker processes", {
      timeout: scaled(300_000),
    }, async (t) => {
      const { producer, start, tails } = await setup(t);
      await start(3);
      const add = producer.task("amqp.add", (a: number, b: number) => a + b);
      const tsum = producer.task("amqp.tsum", (xs: number[]) => xs.reduce((s, x) => s + x, 0));
      const members = Array.from({ length: 1_000 }, (_, i) => add.s(i, 1));
      const [chained, grouped, chorded] = await Promise.all([
        chain(add.s(0, 1), ...Array.from({ length: 999 }, () => add.s(1))).apply(),
        group(...members).apply(),
        chord(group(...members), tsum.s()).apply(),
      ]);
      const expectedSum = (999 * 1_000) / 2 + 1_000;
      const [chainValue, groupValue, chordValue] = await within(
        Promise.all([
          chained.get({ timeout: scaled(200_000) }),
          grouped.get({ timeout: scaled(200_000) }),
          chorded.get({ timeout: scaled(200_000) }),
        ]),
        scaled(205_000),
        "the 1,000-step canvases",
        tails,
      );
      assert.equal(chainValue, 1_000);
      assert.deepEqual(
        groupValue,
        Array.from({ length: 1_000 }, (_, i) => i + 1),
      );
      assert.equal(chordValue, expectedSum);
    });
  });
}
