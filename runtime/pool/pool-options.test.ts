import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createApp } from "../app.ts";
import { WorkerError } from "../errors.ts";
import { parseByteSize, resolvePoolOptions, type PoolKind } from "./pool-options.ts";
import { PoolStartError } from "./pool-errors.ts";

const reasonOf = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof WorkerError, `expected a WorkerError, got ${String(error)}`);
    return error.reason;
  }
  assert.fail("no error");
};

describe("pool options", () => {
  it("default to the async pool with no limits", () => {
    const resolved = resolvePoolOptions("w", {}, undefined);
    assert.equal(resolved.kind, "async");
    assert.equal(resolved.maxTasksPerChild, Infinity);
    assert.equal(resolved.autoscale, undefined);
  });

  it("refuse an unknown pool, naming the ones there are", () => {
    assert.match(
      reasonOf(() => resolvePoolOptions("w", { pool: "prefork" as PoolKind }, undefined)),
      /async, threads, process.*'prefork'/,
    );
  });

  it("refuse a threads or process pool without the app's module, saying how to give it", () => {
    assert.match(
      reasonOf(() => createApp({ log: () => {} }).worker({ pool: "threads" })),
      /createApp\(\{ module: import\.meta\.url \}\)/,
    );
    assert.match(
      reasonOf(() => resolvePoolOptions("w", { pool: "process" }, undefined)),
      /worker\(\{ appModule \}\)/,
    );
  });

  it("refuse limits that are not positive integers", () => {
    assert.match(
      reasonOf(() => resolvePoolOptions("w", { maxTasksPerChild: 0 }, undefined)),
      /maxTasksPerChild .* got 0/,
    );
    assert.match(
      reasonOf(() => resolvePoolOptions("w", { maxMemoryPerChild: -5 }, undefined)),
      /maxMemoryPerChild .* got -5/,
    );
    assert.match(
      reasonOf(() => resolvePoolOptions("w", { blockWarnMs: 0 }, undefined)),
      /blockWarnMs/,
    );
  });

  it("refuse an autoscale whose min is above its max", () => {
    assert.match(
      reasonOf(() => resolvePoolOptions("w", { autoscale: { max: 2, min: 4 } }, undefined)),
      /min <= max, got max 2, min 4/,
    );
    assert.match(
      reasonOf(() => resolvePoolOptions("w", { autoscale: { max: 2, min: 1, idleMs: 0 } }, undefined)),
      /idleMs/,
    );
  });

  it("read sizes in bytes, KB, MB and GB, and refuse anything else", () => {
    assert.equal(parseByteSize("1048576"), 2 ** 20);
    assert.equal(parseByteSize("512MB"), 512 * 2 ** 20);
    assert.equal(parseByteSize("1.5gb"), 1.5 * 2 ** 30);
    assert.equal(parseByteSize("200k"), 200 * 1024);
    assert.throws(() => parseByteSize("lots"), /'lots' is not a size/);
    assert.throws(() => parseByteSize("5 parsecs"), /not a size/);
  });
});

describe("starting a pool", () => {
  it("fails with PoolStartError when the module exports no app, and the worker can be dropped", async () => {
    const app = createApp({ log: () => {}, module: new URL("./test-fixtures/no-app.ts", import.meta.url).href });
    try {
      await assert.rejects(
        app.worker({ pool: "threads", concurrency: 1 }).start(),
        (e: unknown) => e instanceof PoolStartError && /exports no app/.test(e.message),
      );
    } finally {
      await app.close();
    }
  });

  it("fails with PoolStartError naming the module when it cannot be loaded", async () => {
    const app = createApp({ log: () => {} });
    try {
      await assert.rejects(
        app.worker({ pool: "process", concurrency: 1, appModule: "/nonexistent/tasks.ts" }).start(),
        (e: unknown) =>
          e instanceof PoolStartError &&
          e.module === "/nonexistent/tasks.ts" &&
          /Cannot find module|ERR_MODULE_NOT_FOUND/.test(e.message),
      );
    } finally {
      await app.close();
    }
  });
});
