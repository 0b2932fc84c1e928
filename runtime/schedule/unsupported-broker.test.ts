import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { testVhost } from "../../broker/amqp/amqp-test-broker.ts";
import { createApp } from "../app.ts";

const server = await testVhost("schedules");

describe("periodic tasks on a broker that keeps no schedules", () => {
  it("refuse every schedule operation and the beat on RabbitMQ without a schedule store, naming where to keep them", {
    skip: "skip" in server ? server.skip : false,
  }, async (t) => {
    if ("skip" in server) return;
    t.after(() => server.dispose());
    const app = createApp({ broker: server.url, log: () => {} });
    t.after(() => app.close());
    const ping = app.task("ping", () => 1);
    app.schedule("tick", { every: "1s" }, ping.s());
    await assert.rejects(
      app.schedules.list(),
      /RabbitMQ keeps none: keep them in PostgreSQL \(createApp\(\{ schedules: "postgres:\/\/…" \}\), celerity beat --schedules postgres:\/\/…\)/,
    );
    await assert.rejects(app.beat().start(), /RabbitMQ keeps none/);
  });

  it("refuse a schedules url that is not PostgreSQL's, naming it", () => {
    assert.throws(
      () => createApp({ schedules: "redis://127.0.0.1:6379/0", log: () => {} }),
      /schedules.*must be a postgres:\/\/ url \(schedules are otherwise kept by the broker\), got "redis:\/\/127.0.0.1:6379\/0"/,
    );
  });
});
