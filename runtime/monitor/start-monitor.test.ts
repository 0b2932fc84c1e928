import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { createApp, type App } from "../app.ts";
import { scaled, within } from "../../tests/support/waits.ts";
import type { LiveSnapshot } from "./live-updates.ts";
import { MonitorExposedError, startMonitor, type RunningMonitor } from "./start-monitor.ts";

const WAIT_MS = scaled(5_000);

const running = async (t: TestContext): Promise<{ app: App; monitor: RunningMonitor }> => {
  const app = createApp({ log: () => {}, events: true });
  app.task("add", (x: number, y: number) => x + y);
  await app.worker({ concurrency: 1, events: true }).start();
  const monitor = await startMonitor(app, { port: 0, auth: { token: "s3cret" } });
  t.after(async () => {
    await monitor.close();
    await app.close();
  });
  return { app, monitor };
};

const bearer = { authorization: "Bearer s3cret" };

/** The first `update` event of the live stream at `url`. */
const firstUpdate = async (url: string): Promise<LiveSnapshot> => {
  const response = await fetch(url, { headers: bearer });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`the stream ended before an update; got ${text}`);
      text += decoder.decode(value, { stream: true });
      const frame = /event: update\ndata: (.*)\n\n/.exec(text);
      if (frame !== null) return JSON.parse(frame[1]) as LiveSnapshot;
    }
  } finally {
    await reader.cancel();
  }
};

describe("a running monitor", () => {
  it("serves the page without credentials and the API and live updates only with them", async (t) => {
    const { app, monitor } = await running(t);
    const page = await fetch(`${monitor.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>celerity monitor<\/title>/);
    const script = await fetch(`${monitor.url}/assets/monitor.js`);
    assert.match(script.headers.get("content-type") ?? "", /javascript/);
    await script.arrayBuffer();

    const refused = await fetch(`${monitor.url}/api/queues`);
    assert.equal(refused.status, 401);
    assert.match(((await refused.json()) as { message: string }).message, /authentication required/);
    const liveRefused = await fetch(`${monitor.url}/api/live`);
    assert.equal(liveRefused.status, 401);
    await liveRefused.arrayBuffer();

    // A POST body crosses Node's server into the handler.
    const applied = await fetch(`${monitor.url}/api/apply/add`, {
      method: "POST",
      headers: { ...bearer, "content-type": "application/json" },
      body: JSON.stringify({ args: [2, 2] }),
    });
    assert.equal(applied.status, 202);
    const { id } = (await applied.json()) as { id: string };
    assert.equal(await app.result(id).get({ timeout: WAIT_MS }), 4);

    const snapshot = await within(firstUpdate(`${monitor.url}/api/live`), WAIT_MS, "the first live update");
    assert.ok(snapshot.queues?.some((queue) => queue.name === "celery"));
    assert.equal(snapshot.series.length, 120);
  });

  it("refuses to listen beyond loopback without credentials", async (t) => {
    const app = createApp({ log: () => {} });
    t.after(() => app.close());
    await assert.rejects(startMonitor(app, { host: "0.0.0.0", port: 0 }), (error: unknown) => {
      assert.ok(error instanceof MonitorExposedError);
      assert.match(error.message, /refusing to serve on 0\.0\.0\.0 without credentials/);
      return true;
    });
  });
});
