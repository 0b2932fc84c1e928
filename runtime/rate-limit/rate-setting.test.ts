import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createApp } from "../app.ts";
import { RateLimitError, parseRate, resolveRateLimit } from "./rate-setting.ts";

describe("rate limit options", () => {
  it("reads Celery's rate strings, a bare number meaning per second", () => {
    assert.deepEqual(parseRate("t", "10/s"), { count: 10, periodMs: 1_000 });
    assert.deepEqual(parseRate("t", "100/m"), { count: 100, periodMs: 60_000 });
    assert.deepEqual(parseRate("t", "1000/h"), { count: 1_000, periodMs: 3_600_000 });
    assert.deepEqual(parseRate("t", "2.5"), { count: 2.5, periodMs: 1_000 });
    assert.deepEqual(parseRate("t", 7), { count: 7, periodMs: 1_000 });
  });

  it("defaults the burst to one second's worth, at least one", () => {
    assert.equal(resolveRateLimit("t", "10/s").burst, 10);
    assert.equal(resolveRateLimit("t", "100/m").burst, 1);
    assert.equal(resolveRateLimit("t", "1000/h").burst, 1);
    assert.equal(resolveRateLimit("t", "10/s").scope, "global");
    const full = resolveRateLimit("t", { rate: "10/s", burst: 20, scope: "worker", key: (host: string) => host });
    assert.equal(full.burst, 20);
    assert.equal(full.scope, "worker");
    assert.equal((full.key as (host: string) => string)("a"), "a");
  });

  for (const bad of ["10/x", "10/sec", " 10/s", "-1/s", "0/s", "ten/s", "10/", "/s", "1e3/s", ""]) {
    it(`refuses the rate '${bad}', naming the task and the string`, () => {
      assert.throws(
        () => parseRate("fetch", bad),
        (error: unknown) =>
          error instanceof RateLimitError && error.message.includes("'fetch'") && error.message.includes(`'${bad}'`),
      );
    });
  }

  it("refuses a bad burst, scope or key, and a rate that is neither a string nor a number", () => {
    const refuses = (setting: unknown, what: RegExp) =>
      assert.throws(
        () => resolveRateLimit("fetch", setting as never),
        (error: unknown) => error instanceof RateLimitError && what.test(error.message),
      );
    refuses({ rate: "1/s", burst: 0 }, /burst must be a positive integer, got 0/);
    refuses({ rate: "1/s", burst: 1.5 }, /burst must be a positive integer/);
    refuses({ rate: "1/s", scope: "cluster" }, /scope must be "global" or "worker", got 'cluster'/);
    refuses({ rate: "1/s", key: "host" }, /key must be a function/);
    refuses({ rate: null }, /a rate is a string/);
    refuses(0, /positive number/);
    refuses(Number.NaN, /positive number/);
  });

  it("refuses a bad rate at registration, and the task is not registered", () => {
    const app = createApp();
    assert.throws(
      () => app.task("fetch", () => 1, { rateLimit: "10 per second" }),
      (error: unknown) =>
        error instanceof RateLimitError &&
        error.message ===
          `rate limit of task 'fetch': a rate looks like "10/s", "100/m" or "1000/h" (or a bare number, per second), got '10 per second'`,
    );
    // Registering again under the same name works: the failed registration left nothing behind.
    app.task("fetch", () => 1, { rateLimit: "10/s" });
  });

  it("refuses a bad rate at run time, naming the task", async () => {
    const app = createApp();
    await assert.rejects(
      app.control.rateLimit("fetch", "fast"),
      (error: unknown) => error instanceof RateLimitError && /task 'fetch'.*got 'fast'/.test(error.message),
    );
    await assert.rejects(
      app.control.rateLimit("", "1/s"),
      (error: unknown) => error instanceof RateLimitError && /non-empty/.test(error.message),
    );
    await assert.rejects(
      app.control.rateLimit("fetch", { rate: "1/s", burst: -1 }),
      /burst must be a positive integer/,
    );
  });

  it("keeps the limit out of the message: a key function does not make the task unsendable", async () => {
    const app = createApp();
    const fetch = app.task("fetch", (host: string) => host, {
      rateLimit: { rate: "100/s", key: (host: string) => host },
    });
    await app.worker().start();
    assert.equal(await (await fetch.delay("a")).get({ timeout: 5_000 }), "a");
    await app.close();
  });
});
