import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it, type TestContext } from "node:test";
import { SMTPServer } from "smtp-server";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { createApp, type App } from "../app.ts";
import { serveResults } from "../results/result-service.ts";
import { eventually } from "../test-support.ts";
import { scaled } from "../../tests/support/waits.ts";
import { verifyHttpSignature } from "../http/http-signature.ts";
import { emailChannel } from "./email-channel.ts";
import { FailureNotifier, notifyFailures } from "./failure-notifier.ts";
import { NotificationGate } from "./notification-gate.ts";
import { errorOfEvent, notifyFailuresFromEvents } from "./event-failures.ts";
import { webhookChannel } from "./webhook-channel.ts";
import { APPS_ON_BROKERS, embeddedApp } from "../../tests/support/apps-on-brokers.ts";

const SECRET = "hook-secret";

/** A local SMTP server keeping every message it is given. */
const smtpServer = async (t: TestContext) => {
  const mails: { from: string; to: string[]; data: string }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        mails.push({
          from: session.envelope.mailFrom === false ? "" : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString("utf8"),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.server.address() as AddressInfo).port;
  return { mails, smtp: { host: "127.0.0.1", port, secure: false, ignoreTLS: true } };
};

/** A local HTTP receiver keeping every verified JSON body; a request failing verification is kept as an error. */
const receiver = async (t: TestContext) => {
  const bodies: Record<string, unknown>[] = [];
  const rejected: string[] = [];
  const server = createServer(async (request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    try {
      verifyHttpSignature({ secret: SECRET, header: request.headers["x-celerity-signature"], body });
      bodies.push(JSON.parse(body.toString()) as Record<string, unknown>);
      response.end();
    } catch (error) {
      rejected.push(String(error));
      response.statusCode = 401;
      response.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/failures`, bodies, rejected };
};

for (const [name, make] of APPS_ON_BROKERS) {
  describe(`failure notifications over the ${name}`, () => {
    it("e-mails a local SMTP server and posts a signed webhook when a task fails", async (t) => {
      const logs: string[] = [];
      const { mails, smtp } = await smtpServer(t);
      const hook = await receiver(t);
      const app = await make(t, logs);
      const notifier = notifyFailures(app, {
        channels: [
          emailChannel({ smtp, from: "celerity@example.com", to: ["ops@example.com"] }),
          webhookChannel({ url: hook.url, secret: SECRET }),
        ],
      });
      t.after(() => notifier.close());
      const charge = app.task("charge", (order: string) => {
        throw new Error(`card declined for ${order}`);
      });
      await app.worker({ name: "w-notify" }).start();
      const result = await charge.delay("o-7");
      await assert.rejects(result.get({ timeout: scaled(30_000) }), /card declined/);
      await eventually(
        () => mails.length === 1 && hook.bodies.length === 1,
        scaled(30_000),
        "the e-mail and the webhook",
      );
      await notifier.idle();
      assert.deepEqual(mails[0].to, ["ops@example.com"]);
      assert.equal(mails[0].from, "celerity@example.com");
      assert.match(mails[0].data, /Subject: \[celerity\] task 'charge' failed: Error: card declined for o-7/);
      assert.match(mails[0].data, new RegExp(`task id: ${result.id}`));
      assert.match(mails[0].data, /worker: w-notify/);
      assert.deepEqual(hook.rejected, []);
      const posted = hook.bodies[0];
      assert.equal(posted.type, "task-failed");
      assert.equal(posted.id, result.id);
      assert.equal(posted.task, "charge");
      assert.deepEqual(
        { name: (posted.error as { name: string }).name, message: (posted.error as { message: string }).message },
        { name: "Error", message: "card declined for o-7" },
      );
      assert.equal(posted.suppressed, 0);
      assert.deepEqual(logs, []);
    });
  });
}

describe("a failure storm", () => {
  it("sends at most the configured number of notices for 1,000 failures", async (t) => {
    const { mails, smtp } = await smtpServer(t);
    const hook = await receiver(t);
    const app = await embeddedApp(t, []);
    const notifier = notifyFailures(app, {
      channels: [
        emailChannel({ smtp, from: "celerity@example.com", to: "ops@example.com" }),
        webhookChannel({ url: hook.url, secret: SECRET }),
      ],
      dedupeWindowMs: 0,
      rate: { max: 5, perMs: 60 * 60_000 },
    });
    t.after(() => notifier.close());
    const broken = app.task("broken", (i: number) => {
      throw new Error(`failure number ${i}`);
    });
    await app.worker({ concurrency: 16 }).start();
    const results = await Promise.all(Array.from({ length: 1_000 }, (_, i) => broken.delay(i)));
    const failed = await Promise.all(
      results.map((r) =>
        r.get({ timeout: 30_000 }).then(
          () => false,
          () => true,
        ),
      ),
    );
    assert.equal(failed.filter(Boolean).length, 1_000);
    await notifier.idle();
    assert.equal(notifier.notified, 5);
    assert.equal(mails.length, 5);
    assert.equal(hook.bodies.length, 5);
  });

  it("notifies one failure of a kind per window, and tells the next notice how many were held back", async (t) => {
    const hook = await receiver(t);
    const app = await embeddedApp(t, []);
    let now = 1_000_000;
    const notifier = notifyFailures(app, {
      channels: [webhookChannel({ url: hook.url, secret: SECRET })],
      dedupeWindowMs: 60_000,
      now: () => now,
    });
    t.after(() => notifier.close());
    const same = app.task("same", () => {
      throw new Error("database unreachable");
    });
    await app.worker({ concurrency: 8 }).start();
    const results = await Promise.all(Array.from({ length: 200 }, () => same.delay()));
    await Promise.all(results.map((r) => r.get({ timeout: 30_000 }).catch(() => undefined)));
    await notifier.idle();
    assert.equal(hook.bodies.length, 1);
    now += 60_000;
    await assert.rejects((await same.delay()).get({ timeout: scaled(30_000) }));
    await eventually(() => hook.bodies.length === 2, scaled(30_000), "the notice after the window");
    assert.equal(hook.bodies[1].suppressed, 199);
  });
});

describe("notification choices and failures", () => {
  it("notifies only the tasks named, and logs a channel that cannot deliver without touching the task", async (t) => {
    const logs: string[] = [];
    const app = await embeddedApp(t, logs);
    const delivered: string[] = [];
    const notifier = notifyFailures(app, {
      tasks: ["watched"],
      channels: [
        { name: "broken channel", send: async () => Promise.reject(new Error("connection refused")) },
        { name: "memory", send: async (notice) => void delivered.push(notice.task) },
      ],
      log: (line) => logs.push(line),
    });
    t.after(() => notifier.close());
    const watched = app.task("watched", () => {
      throw new Error("boom");
    });
    const ignored = app.task("ignored", () => {
      throw new Error("boom");
    });
    await app.worker().start();
    await assert.rejects((await ignored.delay()).get({ timeout: scaled(30_000) }), /boom/);
    const result = await watched.delay();
    await assert.rejects(result.get({ timeout: scaled(30_000) }), /boom/);
    await eventually(
      () => delivered.length === 1 && logs.length === 1,
      scaled(30_000),
      "the delivery and the logged failure",
    );
    assert.deepEqual(delivered, ["watched"]);
    assert.match(
      logs[0],
      new RegExp(
        `notifications: broken channel could not deliver the notice of task 'watched' failed: Error: boom \\(${result.id}\\): connection refused`,
      ),
    );
    assert.equal(await result.state(), "FAILURE");
  });

  it("refuses limits and channels that cannot work, naming them", () => {
    assert.throws(() => new FailureNotifier({ channels: [] }), /give at least one channel/);
    const channels = [{ name: "x", send: async () => {} }];
    assert.throws(
      () => new FailureNotifier({ channels, dedupeWindowMs: -1 }),
      /'dedupeWindowMs' must be a number of ms of at least 0 \(got -1\)/,
    );
    assert.throws(
      () => new FailureNotifier({ channels, rate: { max: 0, perMs: 1_000 } }),
      /'rate' must be \{ max: a positive integer/,
    );
    assert.throws(() => webhookChannel({ url: "ftp://example.com" }), /only http: and https: URLs, not ftp:/);
    assert.throws(
      () => emailChannel({ smtp: "smtp://127.0.0.1:1", from: "a@b.c", to: [] }),
      /'to' must name at least one address/,
    );
  });

  it("admits a kind again after its window and refills the rate over time", () => {
    const gate = new NotificationGate({ dedupeWindowMs: 100, rate: { max: 2, perMs: 1_000 } }, 0);
    assert.equal(gate.admit("a", 0), 0);
    assert.equal(gate.admit("a", 50), undefined);
    assert.equal(gate.admit("b", 60), 0);
    assert.equal(gate.admit("c", 70), undefined, "the rate of 2 is used up");
    assert.equal(gate.admit("a", 150), undefined, "still no token");
    assert.equal(gate.admit("a", 600), 2, "a token is back: two 'a' were held back");
    assert.equal(gate.admit("c", 1_200), 1);
  });
});

describe("failure notifications from the events stream", () => {
  it("notifies the failures of two workers from one subscriber, within one cluster-wide rate limit", async (t) => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    serveResults(node);
    const apps: App[] = [];
    t.after(async () => {
      for (const app of apps.reverse()) await app.close();
      await node.stop();
    });
    const connect = () => {
      const app = createApp({ broker: node.url, log: () => {} });
      apps.push(app);
      app.task("flaky", (i: number) => {
        throw new TypeError(`bad input ${i}`);
      });
      return app;
    };
    const hook = await receiver(t);
    const monitor = connect();
    const notifications = await notifyFailuresFromEvents(monitor, {
      channels: [webhookChannel({ url: hook.url, secret: SECRET })],
      dedupeWindowMs: 0,
      rate: { max: 3, perMs: 60 * 60_000 },
    });
    t.after(() => notifications.close());
    const first = connect();
    const second = connect();
    await first.worker({ name: "w-a", events: true, concurrency: 4 }).start();
    await second.worker({ name: "w-b", events: true, concurrency: 4 }).start();
    const producer = connect();
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => producer.sendTask("flaky", [i])));
    await Promise.all(results.map((r) => r.get({ timeout: 30_000 }).catch(() => undefined)));
    await eventually(() => notifications.notifier.received === 100, 10_000, "every failure event");
    await notifications.notifier.idle();
    assert.equal(hook.bodies.length, 3);
    for (const body of hook.bodies) {
      assert.equal(body.task, "flaky");
      assert.equal((body.error as { name: string }).name, "TypeError");
      assert.match((body.error as { message: string }).message, /^bad input \d+$/);
      assert.match(String(body.worker), /^w-[ab]$/);
    }
  });

  it("reads the error's name, message and stack back from an event", () => {
    const base = {
      type: "task-failed" as const,
      uuid: "u",
      name: "t",
      hostname: "w",
      timestamp: 1,
      utcoffset: 0,
      pid: 1,
      clock: 1,
    };
    assert.deepEqual(
      errorOfEvent({
        ...base,
        exception: 'TypeError("bad (really) \\"input\\"")',
        traceback: "TypeError: bad\n  at x",
      }),
      {
        name: "TypeError",
        message: 'bad (really) "input"',
        stack: "TypeError: bad\n  at x",
      },
    );
    assert.deepEqual(errorOfEvent({ ...base, exception: "something else", traceback: "" }), {
      name: "Error",
      message: "something else",
    });
  });
});
