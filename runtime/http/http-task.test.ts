import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it, type TestContext } from "node:test";
import { RemoteTaskError } from "../errors.ts";
import { HttpSignatureError, signHttpBody, verifyHttpSignature } from "./http-signature.ts";
import { httpTask } from "./http-task.ts";
import { APPS_ON_BROKERS, embeddedApp } from "../../tests/support/apps-on-brokers.ts";

const SECRET = "test-secret";

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage["headers"];
  readonly body: Buffer;
}

/** A local HTTP server answering each request with `answer`, recording what it received. */
const serve = async (t: TestContext, answer: (request: Received, n: number, response: ServerResponse) => void) => {
  const received: Received[] = [];
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const got = {
      method: request.method ?? "",
      url: request.url ?? "",
      headers: request.headers,
      body: Buffer.concat(chunks),
    };
    received.push(got);
    answer(got, received.length, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
};

for (const [name, make] of APPS_ON_BROKERS) {
  describe(`HTTP tasks over the ${name}`, () => {
    it("retries a server that fails twice, then stores its answer; every request is signed and verifies", async (t) => {
      const server = await serve(t, (request, n, response) => {
        verifyHttpSignature({ secret: SECRET, header: request.headers["x-celerity-signature"], body: request.body });
        if (n <= 2) {
          response.statusCode = 503;
          return response.end("busy");
        }
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify({ received: JSON.parse(request.body.toString()), try: n }));
      });
      const app = await make(t);
      const http = httpTask(app, { secret: SECRET, timeout: 5_000, retry: { max: 3, delay: 5, backoff: 1 } });
      await app.worker().start();
      const result = await http.delay({ url: `${server.url}/hooks/paid`, body: { order: 42 } });
      const response = await result.get({ timeout: 10_000 });
      assert.equal(response.status, 200);
      assert.deepEqual(response.body, { received: { order: 42 }, try: 3 });
      assert.equal(response.headers["content-type"], "application/json");
      assert.equal(server.received.length, 3);
      for (const request of server.received) {
        assert.equal(request.method, "POST");
        assert.equal(request.url, "/hooks/paid");
        assert.equal(request.headers["x-celerity-task-id"], result.id);
      }
    });
  });
}

describe("HTTP tasks", () => {
  it("fails at once on a status not worth retrying, naming the URL and status", async (t) => {
    const server = await serve(t, (_request, _n, response) => {
      response.statusCode = 404;
      response.end("no such hook");
    });
    const app = await embeddedApp(t);
    const http = httpTask(app, { retry: { max: 3, delay: 5 } });
    await app.worker().start();
    const result = await http.delay({ url: `${server.url}/missing` });
    await assert.rejects(result.get({ timeout: 10_000 }), (error: unknown) => {
      assert.ok(error instanceof RemoteTaskError);
      assert.match(
        error.message,
        new RegExp(`HTTP call to ${server.url}/missing failed: status 404 Not Found \\(not retried\\)`),
      );
      return true;
    });
    assert.equal(server.received.length, 1);
    assert.equal(server.received[0].method, "GET");
  });

  it("gives up on a server that does not answer within the timeout, after its retries", async (t) => {
    const server = await serve(t, () => {
      // Never answers.
    });
    const app = await embeddedApp(t);
    // A second long enough for each request to reach the server, in this process, on a loaded machine.
    const http = httpTask(app, { timeout: 1_000, retry: { max: 1, delay: 5 } });
    await app.worker().start();
    const result = await http.delay({ url: server.url });
    await assert.rejects(result.get({ timeout: 10_000 }), /HTTP call to .* failed: no answer within 1000 ms/);
    assert.equal(server.received.length, 2);
  });

  it("retries after the delay a 429's Retry-After asks for", async (t) => {
    const server = await serve(t, (_request, n, response) => {
      if (n === 1) {
        response.statusCode = 429;
        response.setHeader("retry-after", "0");
        return response.end();
      }
      response.end("ok");
    });
    const app = await embeddedApp(t);
    const http = httpTask(app, { retry: { max: 2, delay: 60_000 } });
    await app.worker().start();
    const response = await (await http.delay({ url: server.url })).get({ timeout: 10_000 });
    assert.deepEqual([response.status, response.body], [200, "ok"]);
  });

  it("refuses a request that is not one, without calling anything or retrying", async (t) => {
    const app = await embeddedApp(t);
    const http = httpTask(app, { retry: { max: 3, delay: 5 } });
    await app.worker().start();
    const cases: [unknown, RegExp][] = [
      [{ url: "not a url" }, /'not a url' is not a URL \(not retried\)/],
      [{ url: "file:///etc/passwd" }, /only http: and https: URLs can be called, not file:/],
      [{ url: "http://127.0.0.1:1", method: "BREW" }, /unknown method 'BREW'/],
      [{ url: "http://127.0.0.1:1", method: "GET", body: {} }, /a GET request cannot have a body/],
    ];
    for (const [request, message] of cases) {
      const result = await http.delay(request as never);
      await assert.rejects(result.get({ timeout: 10_000 }), message);
      assert.equal((await app.results.get(result.id))?.retries, 0);
    }
  });
});

describe("verifying an HTTP task's signature on the receiving side", () => {
  const body = JSON.stringify({ order: 42 });
  const now = 1_700_000_000_000;
  const header = signHttpBody(SECRET, body, now);

  it("accepts the body as signed, within the tolerance", () => {
    verifyHttpSignature({ secret: SECRET, header, body, now: now + 1_000 });
    verifyHttpSignature({ secret: SECRET, header: [header], body: Buffer.from(body), now });
  });

  it("rejects a missing, malformed, stale, tampered or differently keyed signature, saying which", () => {
    const rejects = (check: Parameters<typeof verifyHttpSignature>[0], reason: string) =>
      assert.throws(
        () => verifyHttpSignature(check),
        (error: unknown) => error instanceof HttpSignatureError && error.reason === reason,
      );
    rejects({ secret: SECRET, header: undefined, body, now }, "missing");
    rejects({ secret: SECRET, header: "sha256=abc", body, now }, "malformed");
    rejects({ secret: SECRET, header, body, now: now + 5 * 60 * 1_000 + 1 }, "expired");
    rejects({ secret: SECRET, header, body: body.replace("42", "43"), now }, "mismatch");
    rejects({ secret: "other", header, body, now }, "mismatch");
    rejects({ secret: SECRET, header: header.replace(`t=${now}`, `t=${now + 1}`), body, now }, "mismatch");
  });
});
