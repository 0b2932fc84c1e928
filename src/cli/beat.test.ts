import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { createApp } from "../../runtime/app.ts";
import { serveSchedules } from "../../runtime/schedule/schedule-service.ts";
import { scaled } from "../../tests/support/waits.ts";
import { runCelerity } from "../../tests/support/watched-process.ts";

const BEAT_APP = fileURLToPath(new URL("../../tests/fixtures/beat-app.ts", import.meta.url));

/** Run the CLI to its exit, without a broker url inherited from the shell (the node under test runs in this process). */
const celerity = (args: readonly string[], env: Record<string, string> = {}) =>
  runCelerity(args, scaled(60_000), { env, withoutEnv: ["CELERITY_BROKER_URL"] });

describe("celerity beat", () => {
  it("lists the schedules kept on a node, with their last and next runs, as a table or JSON", {
    timeout: scaled(120_000),
  }, async (t) => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    serveSchedules(node, { now: () => Date.parse("2026-03-02T00:00:00Z") });
    const app = createApp({ broker: node.url, log: () => {} });
    t.after(async () => {
      await app.close();
      await node.stop();
    });
    await app.schedules.add(
      "nightly",
      { cron: "30 2 * * *", tz: "Europe/Berlin" },
      { task: "report", args: ["daily"], options: {} },
      { catchUp: "all" },
    );
    await app.schedules.add("often", { every: "30s" }, { task: "ping", args: [], options: {} });

    const table = await celerity(["beat", "list", "--broker", node.url]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^NAME\s+WHEN\s+TASK\s+CATCH-UP\s+LAST RUN\s+NEXT RUN$/);
    assert.match(
      lines[1],
      /^nightly\s+cron "30 2 \* \* \*" \(Europe\/Berlin\)\s+report\s+all\s+-\s+2026-03-02T01:30:00.000Z$/,
    );
    assert.match(lines[2], /^often\s+every 30s\s+ping\s+once\s+-\s+2026-03-02T00:00:30.000Z$/);

    const json = await celerity(["beat", "list", "--json"], { CELERITY_BROKER_URL: node.url });
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(
      (JSON.parse(json.stdout) as { name: string; nextRun: number }[]).map((s) => [s.name, s.nextRun]),
      [
        ["nightly", Date.parse("2026-03-02T01:30:00Z")],
        ["often", Date.parse("2026-03-02T00:00:30Z")],
      ],
    );
  });

  it("exits 2 naming what is missing or wrong", { timeout: scaled(120_000) }, async () => {
    const [noBroker, noApp, badLease, badScheme, badSchedules, rabbitAlone] = await Promise.all([
      celerity(["beat", "--app", BEAT_APP]),
      celerity(["beat", "--broker", "celerity://127.0.0.1:1"]),
      celerity(["beat", "--app", BEAT_APP, "--broker", "celerity://127.0.0.1:1", "--lease", "soon"]),
      celerity(["beat", "--app", BEAT_APP, "--broker", "kafka://127.0.0.1:1"]),
      celerity(["beat", "--app", BEAT_APP, "--broker", "redis://127.0.0.1:1", "--schedules", "redis://127.0.0.1:1"]),
      celerity(["beat", "--app", BEAT_APP, "--broker", "amqp://127.0.0.1:1"]),
    ]);
    assert.equal(noBroker.code, 2);
    assert.match(
      noBroker.stderr,
      /celerity beat: no broker: pass --broker celerity:\/\/host:port \(or redis:\/\/…, amqp:\/\/… with --schedules postgres:\/\/…\) or set CELERITY_BROKER_URL/,
    );
    assert.equal(badScheme.code, 2);
    assert.match(badScheme.stderr, /--broker: "kafka:\/\/127.0.0.1:1" has no scheme celerity knows/);
    assert.equal(badSchedules.code, 2);
    assert.match(badSchedules.stderr, /--schedules: "redis:\/\/127.0.0.1:1" is not a postgres:\/\/ url/);
    assert.equal(rabbitAlone.code, 2);
    assert.match(rabbitAlone.stderr, /RabbitMQ keeps no schedules: pass --schedules postgres:\/\/…/);
    assert.equal(noApp.code, 2);
    assert.match(noApp.stderr, /celerity beat: --app is required/);
    assert.equal(badLease.code, 2);
    assert.match(
      badLease.stderr,
      /celerity beat: --lease must be a positive whole number of ms or a duration like "30s".*got "soon"/,
    );
  });
});
