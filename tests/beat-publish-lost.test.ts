/**
 * A beat with its schedules in PostgreSQL whose publish fails because the
 * connection to the broker dropped: the run may or may not have reached the
 * queue, so it stays unconfirmed and the next tick sends it again (a copy
 * that did arrive is claimed once by the workers). A refusal by the broker
 * itself is still not sent again. On a virtual clock, against a node whose
 * transport fails the beat's publishes on demand.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Envelope } from "../broker/envelope.ts";
import { UnroutableError } from "../broker/errors.ts";
import { ConnectionLostError } from "../broker/node/client/node-client.ts";
import type { PublishOptions, Transport } from "../broker/transport.ts";
import type { TaskContext } from "../runtime/task.ts";
import { postgresSkipReason } from "../runtime/results/postgres-test-support.ts";
import { runId } from "../runtime/schedule/run-id.ts";
import { postgresBeatApp } from "./support/postgres-beat.ts";
import { eventually, scaled } from "./support/waits.ts";

const T0 = Date.parse("2026-03-02T00:00:00Z");
const QUEUE = "beat-publish-lost";

/** How the beat's publishes fail for now: not at all, as a dropped connection, or as a refusal. */
type Failure = "none" | "connection lost" | "refused";

/** `broker`, with its publishes failing as `failing.now` says (everything else passes through). */
const failingPublishes = (broker: Transport, failing: { now: Failure }): Transport =>
  new Proxy(broker, {
    get(target, property, receiver) {
      if (property === "publish")
        return (envelope: Envelope, options?: PublishOptions) => {
          if (failing.now === "connection lost")
            return Promise.reject(
              new ConnectionLostError({ url: "celerity://test", op: "publish", reason: "socket closed" }),
            );
          if (failing.now === "refused")
            return Promise.reject(
              new UnroutableError({ exchange: envelope.exchange, routingKey: envelope.routingKey }),
            );
          return target.publish(envelope, options);
        };
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });

const postgresSkip = await postgresSkipReason();

describe("a beat with its schedules in PostgreSQL, when a publish fails", { skip: postgresSkip }, () => {
  const setup = async (t: { after: (fn: () => unknown) => void }) => {
    const failing: { now: Failure } = { now: "none" };
    const { clock, app, logs } = await postgresBeatApp(t, T0, (broker) => failingPublishes(broker, failing));
    const ran: string[] = [];
    const tick = app.task("publish-lost.tick", function (this: TaskContext) {
      ran.push(this.id);
    });
    await app.schedules.add("every-minute", { every: "1m" }, tick.s().set({ queue: QUEUE }));
    const beat = app.beat({ id: "beat", clock });
    assert.ok((await beat.tick()).leader, "the beat leads");
    return { app, clock, beat, failing, logs, ran };
  };

  it("keeps a run whose publish was lost with the connection and sends it again at the next tick", {
    timeout: scaled(60_000),
  }, async (t) => {
    const { app, clock, beat, failing, logs, ran } = await setup(t);
    const instant = T0 + 60_000;
    failing.now = "connection lost";
    await clock.advance(60_000);
    const lost = await beat.tick();
    assert.deepEqual(lost.sent, [], "nothing counts as sent while the connection is down");
    assert.ok(
      logs.some((line) => line.includes("may not have reached the broker") && line.includes("kept")),
      `the beat says it kept the run\n${logs.join("\n")}`,
    );

    failing.now = "none";
    await clock.advance(1_000);
    const next = await beat.tick();
    assert.deepEqual(
      next.resent.map((run) => run.id),
      [runId("every-minute", instant)],
      `the next tick sent the kept run\n${logs.join("\n")}`,
    );
    await app.worker({ queues: [QUEUE], concurrency: 1 }).start();
    await eventually(() => ran.length >= 1, {
      timeoutMs: scaled(20_000),
      what: "the worker to run the kept run",
      detail: () => logs.join("\n"),
    });
    assert.deepEqual(ran, [runId("every-minute", instant)], "the instant ran once");
    await clock.advance(1_000);
    assert.deepEqual((await beat.tick()).resent, [], "a run sent again is not sent a third time");
  });

  it("does not send again a run the broker refused", { timeout: scaled(60_000) }, async (t) => {
    const { clock, beat, failing, logs } = await setup(t);
    failing.now = "refused";
    await clock.advance(60_000);
    await beat.tick();
    assert.ok(
      logs.some((line) => line.includes("the broker refused the run") && line.includes("not sent again")),
      `the beat says the broker refused the run\n${logs.join("\n")}`,
    );
    failing.now = "none";
    await clock.advance(1_000);
    assert.deepEqual((await beat.tick()).resent, [], "the refused run is not sent again");
  });
});
