import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TokenBucket } from "./token-bucket.ts";

const TEN_PER_SECOND = { count: 10, periodMs: 1_000, burst: 10 };

describe("token bucket", () => {
  it("lets a full burst through at once, then one token per 1/rate", () => {
    const bucket = new TokenBucket(TEN_PER_SECOND, 0);
    assert.deepEqual(bucket.take(0, 10), { granted: 10, waitMs: 0 });
    assert.deepEqual(bucket.take(0, 1), { granted: 0, waitMs: 100 });
    assert.deepEqual(bucket.take(99, 1), { granted: 0, waitMs: 1 });
    assert.deepEqual(bucket.take(100, 1), { granted: 1, waitMs: 0 });
  });

  it("grants part of a request and says when the next token is due", () => {
    const bucket = new TokenBucket({ count: 2, periodMs: 1_000, burst: 3 }, 0);
    assert.deepEqual(bucket.take(0, 5), { granted: 3, waitMs: 500 });
  });

  it("never holds more than the burst, however long it sat idle", () => {
    const bucket = new TokenBucket(TEN_PER_SECOND, 0);
    bucket.take(0, 10);
    assert.equal(bucket.tokens(3_600_000), 10);
    assert.equal(bucket.take(3_600_000, 20).granted, 10);
  });

  it("keeps per-minute and per-hour rates exact", () => {
    const bucket = new TokenBucket({ count: 100, periodMs: 60_000, burst: 1 }, 0);
    assert.equal(bucket.take(0).granted, 1);
    assert.deepEqual(bucket.take(599), { granted: 0, waitMs: 1 });
    assert.equal(bucket.take(600).granted, 1);
    const hourly = new TokenBucket({ count: 1_000, periodMs: 3_600_000, burst: 1 }, 0);
    hourly.take(0);
    assert.deepEqual(hourly.take(0), { granted: 0, waitMs: 3_600 });
  });

  it("earns nothing when the clock steps back", () => {
    const bucket = new TokenBucket(TEN_PER_SECOND, 1_000);
    bucket.take(1_000, 10);
    assert.equal(bucket.take(500).granted, 0);
    assert.equal(bucket.take(1_099).granted, 0);
    assert.equal(bucket.take(1_100).granted, 1);
  });

  it("takes refunds back, up to the burst", () => {
    const bucket = new TokenBucket(TEN_PER_SECOND, 0);
    bucket.take(0, 10);
    bucket.refund(0, 3);
    assert.equal(bucket.take(0, 10).granted, 3);
    bucket.refund(0, 50);
    assert.equal(bucket.tokens(0), 10);
  });

  it("clamps what it holds to a lowered burst, so a lowered limit lets no old-sized burst through", () => {
    const bucket = new TokenBucket({ count: 100, periodMs: 1_000, burst: 100 }, 0);
    bucket.setLimit({ count: 5, periodMs: 1_000, burst: 5 }, 0);
    assert.equal(bucket.take(0, 100).granted, 5);
    assert.deepEqual(bucket.take(0), { granted: 0, waitMs: 200 });
  });

  it("keeps the tokens earned before a raised limit", () => {
    const bucket = new TokenBucket({ count: 1, periodMs: 1_000, burst: 1 }, 0);
    bucket.take(0);
    bucket.setLimit({ count: 10, periodMs: 1_000, burst: 10 }, 500);
    assert.equal(bucket.tokens(500), 0.5);
    assert.equal(bucket.take(550).granted, 1);
  });
});
