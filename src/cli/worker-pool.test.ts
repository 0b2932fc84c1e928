import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, poolOptionsOf, shutdownTimeoutOf } from "./worker-pool.ts";

describe("celerity worker's pool flags", () => {
  it("read a pool, autoscale and recycling limits into worker options", () => {
    assert.deepEqual(
      poolOptionsOf({
        pool: "process",
        autoscale: "8,2",
        "max-tasks-per-child": "100",
        "max-memory-per-child": "512MB",
      }),
      {
        pool: "process",
        autoscale: { max: 8, min: 2 },
        maxTasksPerChild: 100,
        maxMemoryPerChild: 512 * 2 ** 20,
      },
    );
    assert.deepEqual(poolOptionsOf({}), {});
  });

  it("refuse each bad value, naming the flag and what it takes", () => {
    assert.throws(
      () => poolOptionsOf({ pool: "prefork" }),
      /--pool must be one of async, threads, process, got 'prefork'/,
    );
    assert.throws(() => poolOptionsOf({ autoscale: "8" }), /--autoscale takes max,min \(for example 8,2\), got '8'/);
    assert.throws(() => poolOptionsOf({ autoscale: "2,8" }), /min <= max, got '2,8'/);
    assert.throws(() => poolOptionsOf({ autoscale: "x,1" }), /--autoscale must be a positive integer, got 'x'/);
    assert.throws(
      () => poolOptionsOf({ "max-tasks-per-child": "0" }),
      /--max-tasks-per-child must be a positive integer, got '0'/,
    );
    assert.throws(
      () => poolOptionsOf({ "max-memory-per-child": "lots" }),
      /--max-memory-per-child: 'lots' is not a size/,
    );
    assert.throws(() => shutdownTimeoutOf({ "shutdown-timeout": "soon" }), /--shutdown-timeout must be a number of ms/);
  });

  it("wait 30 s for running tasks on a warm shutdown unless told otherwise", () => {
    assert.equal(shutdownTimeoutOf({}), DEFAULT_SHUTDOWN_TIMEOUT_MS);
    assert.equal(DEFAULT_SHUTDOWN_TIMEOUT_MS, 30_000);
    assert.equal(shutdownTimeoutOf({ "shutdown-timeout": "0" }), 0);
  });
});
