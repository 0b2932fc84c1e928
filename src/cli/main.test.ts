/**
 * How every `celerity` command ends: --help answers, bad input and an
 * unreachable broker exit non-zero with a message that says what was wrong,
 * and a failure exits at once even while a connection to a node is open.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { Delivery } from "../../broker/envelope.ts";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { NodeTransport } from "../../broker/node/client/node-transport.ts";
import { type FullNode, startFullNode } from "../../runtime/full-node.ts";
import { eventually, scaled } from "../../tests/support/waits.ts";
import { celerity as celerityProcess, runCelerity, START_TIMEOUT_MS } from "../../tests/support/watched-process.ts";

const fixture = (name: string) => fileURLToPath(new URL(`../../tests/fixtures/${name}`, import.meta.url));
/** A bad-input exit comes right after startup (tsx compiles the CLI): the start limit, and a little more. */
const EXIT_TIMEOUT_MS = START_TIMEOUT_MS + scaled(5_000);
/** The CLI with this test's environment only: no broker url or token inherited from the shell. */
const ISOLATED = ["CELERITY_BROKER_URL", "CELERITY_TOKEN"];

const celerity = (args: readonly string[], env: Record<string, string> = {}) =>
  celerityProcess(`celerity ${args[0] ?? ""}`, args, { env, withoutEnv: ISOLATED });

/** Run the CLI to its end; a process still running after the timeout fails the test (and is killed). */
const finished = (args: readonly string[], env: Record<string, string> = {}) =>
  runCelerity(args, EXIT_TIMEOUT_MS, { env, withoutEnv: ISOLATED });

/** A port nothing listens on: one the OS just handed out and took back. */
const deadPort = async (): Promise<number> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
};

describe("celerity --help", () => {
  for (const command of ["run", "broker", "worker", "keygen"]) {
    it(`celerity ${command} --help prints the command's usage and exits 0`, async () => {
      const { code, output } = await finished([command, "--help"]);
      assert.equal(code, 0, output);
      assert.match(output, new RegExp(`^celerity ${command}: `));
      assert.match(output, /Usage:/);
    });
  }

  it("celerity --help lists every command", async () => {
    const { code, output } = await finished(["--help"]);
    assert.equal(code, 0, output);
    for (const command of ["run", "broker", "worker", "keygen"])
      assert.match(output, new RegExp(`celerity ${command} `));
  });
});

describe("celerity on bad input", () => {
  for (const command of ["broker", "worker", "keygen"]) {
    it(`celerity ${command} exits 2 naming an unknown option`, async () => {
      const { code, output } = await finished([command, "--colour", "blue"]);
      assert.equal(code, 2, output);
      assert.match(
        output,
        new RegExp(`celerity ${command}: Unknown option '--colour' \\(see celerity ${command} --help\\)`),
      );
    });
  }

  it("exits 2 for an unknown command, and for run without a file or with a missing one", async () => {
    assert.equal((await finished(["frobnicate"])).code, 2);
    const none = await finished(["run"]);
    assert.equal(none.code, 2);
    assert.match(none.output, /celerity run: missing the workflow file/);
    const missing = await finished(["run", "./no-such-workflow.ts"]);
    assert.equal(missing.code, 2);
    assert.match(missing.output, /celerity run: no such file: .*no-such-workflow\.ts/);
  });

  for (const [flag, value, message] of [
    ["--concurrency", "abc", /--concurrency must be an integer of at least 1, got 'abc'/],
    ["--concurrency", "0", /--concurrency must be an integer of at least 1, got '0'/],
    ["--connect-timeout", "soon", /--connect-timeout must be an integer of at least 0, got 'soon'/],
    ["--queues", ",", /--queues names no queue/],
  ] as const) {
    it(`celerity worker ${flag} ${value} exits 2 before loading the app`, async () => {
      const { code, output } = await finished([
        "worker",
        "--app",
        fixture("cli-app.ts"),
        "--broker",
        "celerity://127.0.0.1:1",
        flag,
        value,
      ]);
      assert.equal(code, 2, output);
      assert.match(output, message);
    });
  }

  it("celerity worker without a broker, or with a malformed broker url, exits 2 saying so", async () => {
    const none = await finished(["worker", "--app", fixture("cli-app.ts")]);
    assert.equal(none.code, 2);
    assert.match(none.output, /no broker to consume from: pass --broker/);
    const unknown = await finished(["worker", "--app", fixture("cli-app.ts"), "--broker", "kafka://localhost"]);
    assert.equal(unknown.code, 2);
    assert.match(
      unknown.output,
      /--broker: "kafka:\/\/localhost" has no scheme celerity knows; use one of celerity:\/\/, redis:\/\//,
    );
    const malformed = await finished(["worker", "--app", fixture("cli-app.ts"), "--broker", "celerity://localhost"]);
    assert.equal(malformed.code, 2);
    assert.match(malformed.output, /broker url must look like celerity:\/\/host:port, got 'celerity:\/\/localhost'/);
  });

  for (const args of [
    ["broker", "--port", "0"],
    ["worker", "--app", fixture("cli-app.ts"), "--broker", "celerity://127.0.0.1:1"],
  ]) {
    it(`celerity ${args[0]} exits 2 naming a --token-file it cannot read`, async () => {
      const { code, output } = await finished([...args, "--token-file", "./no-such-token"]);
      assert.equal(code, 2, output);
      assert.match(output, new RegExp(`celerity ${args[0]}: --token-file: cannot read .*no-such-token: ENOENT`));
    });
  }

  it("celerity broker exits 2 on an empty token file rather than run without a token", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "celerity-cli-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const empty = join(dir, "token");
    writeFileSync(empty, "\n");
    const { code, output } = await finished(["broker", "--port", "0", "--token-file", empty]);
    assert.equal(code, 2, output);
    assert.match(
      output,
      /celerity broker: the token file .*token is empty: put the token in it, or leave --token-file out/,
    );
  });

  it("celerity broker exits 2 on an empty admin token file, or an admin token equal to the token", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "celerity-cli-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const empty = join(dir, "admin-empty");
    writeFileSync(empty, "\n");
    const same = join(dir, "same");
    writeFileSync(same, "s3cret\n");
    const emptyRun = await finished(["broker", "--port", "0", "--admin-token-file", empty]);
    assert.equal(emptyRun.code, 2, emptyRun.output);
    assert.match(emptyRun.output, /the admin token file .*admin-empty is empty: put the token in it/);
    const sameRun = await finished(["broker", "--port", "0", "--token-file", same, "--admin-token-file", same]);
    assert.notEqual(sameRun.code, 0, sameRun.output);
    assert.match(sameRun.output, /the admin token must differ from the token/);
  });

  it("celerity broker exits 2 on a port out of range or a bad fsync policy", async () => {
    const port = await finished(["broker", "--port", "70000"]);
    assert.equal(port.code, 2);
    assert.match(port.output, /--port must be an integer from 0 to 65535, got '70000'/);
    const fsync = await finished(["broker", "--port", "0", "--fsync", "sometimes"]);
    assert.equal(fsync.code, 2);
    assert.match(fsync.output, /--fsync must be "always" or "interval:<ms>", got 'sometimes'/);
  });
  it("celerity broker exits 2 on a dead-letter bound that is not a positive integer, naming the flag", async () => {
    const count = await finished(["broker", "--port", "0", "--max-dead-letters", "0"]);
    assert.equal(count.code, 2, count.output);
    assert.match(count.output, /--max-dead-letters must be an integer of at least 1, got '0'/);
    const bytes = await finished(["broker", "--port", "0", "--max-dead-letter-bytes", "64MiB"]);
    assert.equal(bytes.code, 2, bytes.output);
    assert.match(bytes.output, /--max-dead-letter-bytes must be an integer of at least 1, got '64MiB'/);
  });
});

describe("celerity broker's dead-letter bounds", () => {
  it("--max-dead-letters caps what a dead-letter queue keeps on the node", async (t) => {
    const broker = celerity(["broker", "--port", "0", "--max-dead-letters", "3"]);
    t.after(() => broker.kill());
    const [, url] = await broker.waitFor(/listening on (celerity:\/\/[\d.]+:\d+)/, EXIT_TIMEOUT_MS);
    const client = await NodeTransport.connect(url);
    t.after(() => client.close());
    await client.declareQueue("work");
    for (let i = 0; i < 10; i++)
      await client.publish({
        id: `m${i}`,
        exchange: "",
        routingKey: "work",
        priority: 0,
        headers: {},
        body: new Uint8Array(8),
      });
    const held: Delivery[] = [];
    const consumer = await client.consume("work", (delivery) => void held.push(delivery), { prefetch: 100 });
    await eventually(() => held.length === 10, { what: "10 deliveries" });
    for (const delivery of held) consumer.nack(delivery.deliveryTag, { requeue: false, reason: "refused" });
    await eventually(async () => (await client.stats("work")).unacked === 0, {
      what: "the 10 messages rejected",
      intervalMs: 20,
      timeoutMs: scaled(10_000),
    });
    const letters = await client.deadLetters("work.dlq");
    assert.ok(letters.length >= 2 && letters.length <= 3, `${letters.length} dead letters kept, at most 3 expected`);
    assert.ok(
      letters.some((letter) => letter.envelope.id === "m9"),
      "the newest dead letter is kept",
    );
  });
});

describe("celerity worker and run against a broker node", () => {
  // The node `celerity broker` runs: an app keeps its results there.
  let node: FullNode;
  before(async () => {
    node = await startFullNode({ port: 0, token: "secret", log: () => {} });
  });
  after(() => node.stop());

  it("a worker whose broker is down says what it waits for, then exits 2 after --connect-timeout", async () => {
    const url = `celerity://127.0.0.1:${await deadPort()}`;
    const { code, output } = await finished([
      "worker",
      "--app",
      fixture("cli-app.ts"),
      "--broker",
      url,
      "--connect-timeout",
      "1",
    ]);
    assert.equal(code, 2, output);
    assert.match(
      output,
      new RegExp(
        `celerity worker: waiting for the broker node at ${url} \\(.*ECONNREFUSED.*\\); retrying, giving up 1 s from now`,
      ),
    );
    assert.match(output, new RegExp(`celerity worker: no broker node at ${url} after 1 s`));
  });

  it("a worker the node refuses (wrong token) exits 2 with the refusal", async () => {
    const { code, output } = await finished(["worker", "--app", fixture("cli-app.ts"), "--broker", node.url], {
      CELERITY_TOKEN: "wrong",
    });
    assert.equal(code, 2, output);
    assert.match(output, /celerity worker: .*token/i);
  });

  it("a worker whose module exports no app exits 2, though the module's app is connected", async () => {
    const { code, output } = await finished(
      ["worker", "--app", fixture("cli-app-unexported.ts"), "--broker", node.url],
      { CELERITY_TOKEN: "secret" },
    );
    assert.equal(code, 2, output);
    assert.match(output, /cli-app-unexported\.ts exports no app: export it as the default export or as 'app'/);
  });

  it("celerity run exits 1 with the stack when the workflow throws while connected", async () => {
    const { code, output } = await finished(["run", fixture("cli-failing-workflow.ts")], {
      CELERITY_BROKER_URL: node.url,
      CELERITY_TOKEN: "secret",
    });
    assert.equal(code, 1, output);
    assert.match(output, /celerity run: .*cli-failing-workflow\.ts failed: Error: the workflow failed on purpose/);
  });

  it("a worker started before its node waits for it visibly, then consumes", async (t) => {
    const port = await deadPort();
    const url = `celerity://127.0.0.1:${port}`;
    const worker = celerity(["worker", "--app", fixture("cli-app.ts"), "--broker", url, "--concurrency", "1"]);
    t.after(() => worker.kill());
    await worker.waitFor(/waiting for the broker node at/, EXIT_TIMEOUT_MS);
    const late = await BrokerNode.start({ port, log: () => {} });
    t.after(() => late.stop());
    await worker.waitFor(/reached the broker node at/, EXIT_TIMEOUT_MS);
    await worker.waitFor(/consuming with concurrency 1/, EXIT_TIMEOUT_MS);
    assert.deepEqual(await worker.stop("SIGTERM", EXIT_TIMEOUT_MS), { code: 0, signal: null });
  });
});
