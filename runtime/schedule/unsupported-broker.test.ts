import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, it } from "node:test";
import { skipUnless } from "../../tests/support/prerequisites.ts";
import { createApp } from "../app.ts";

const redisUp = await new Promise<boolean>((resolve) => {
  const socket = connect(6379, "127.0.0.1");
  socket.once("connect", () => (socket.destroy(), resolve(true)));
  socket.once("error", () => resolve(false));
});

describe("periodic tasks on a broker that keeps no schedules", () => {
  it("refuse every schedule operation and the beat on Redis, naming the brokers that keep them", {
    skip: skipUnless(redisUp, "Redis is not running on 127.0.0.1:6379"),
  }, async (t) => {
    const app = createApp({ broker: "redis://127.0.0.1:6379/14", log: () => {} });
    t.after(() => app.close());
    const ping = app.task("ping", () => 1);
    app.schedule("tick", { every: "1s" }, ping.s());
    await assert.rejects(
      app.schedules.list(),
      /Redis keeps none yet: run the beat with a celerity node \(celerity:\/\/\) or the embedded broker/,
    );
    await assert.rejects(app.beat().start(), /Redis keeps none yet/);
  });
});
