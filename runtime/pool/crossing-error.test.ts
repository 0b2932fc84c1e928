import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RetryRequest, TimeLimitExceeded, toErrorInfo } from "../errors.ts";
import { fromCrossing, toCrossing } from "./crossing-error.ts";

/** Through structured clone, as postMessage and the advanced IPC serialization carry it. */
const across = (error: unknown): unknown => fromCrossing(structuredClone(toCrossing(error)));

describe("an error crossing from a pool's thread or child", () => {
  it("keeps a plain error's name, message, stack and fields", () => {
    const original = Object.assign(new TypeError("bad input"), { code: "E_INPUT", detail: { field: "x" } });
    const error = across(original) as Error & { code: string; detail: unknown };
    assert.equal(error.name, "TypeError");
    assert.equal(error.message, "bad input");
    assert.equal(error.stack, original.stack);
    assert.equal(error.code, "E_INPUT");
    assert.deepEqual(error.detail, { field: "x" });
  });

  it("arrives as the runtime's own class, with its cause rebuilt", () => {
    const retry = across(new RetryRequest({ countdown: 5, max: 2, cause: new Error("flaky") }));
    assert.ok(retry instanceof RetryRequest);
    assert.equal(retry.countdown, 5);
    assert.equal(retry.max, 2);
    assert.ok(retry.cause instanceof Error && retry.cause.message === "flaky");
    const limit = across(new TimeLimitExceeded({ task: "t", limitMs: 10 }));
    assert.ok(limit instanceof TimeLimitExceeded);
    assert.equal(toErrorInfo(limit).name, "TimeLimitExceeded");
  });

  it("keeps a thrown non-error as the value it was", () => {
    assert.equal(across("just a string"), "just a string");
    assert.deepEqual(across({ code: 7 }), { code: 7 });
  });

  it("drops fields that cannot cross (functions) instead of failing the task", () => {
    const error = across(Object.assign(new Error("with a callback"), { retryLater: () => {} })) as Error & {
      retryLater?: unknown;
    };
    assert.equal(error.retryLater, undefined);
    assert.equal(error.message, "with a callback");
  });
});
