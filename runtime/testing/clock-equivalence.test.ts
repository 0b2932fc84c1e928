import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chain, chord, group } from "../../dsl/combinators.ts";
import type { AsyncResult, TaskFailure } from "../../dsl/result.ts";
import { createApp, type App } from "../app.ts";
import { createTestApp } from "./test-app.ts";
import { scaled } from "../../tests/support/waits.ts";

const withoutIds = (text: string): string => text.replace(/\([0-9a-f-]{36}\)/g, "(id)");

/**
 * The same work on the real clock (an ordinary app and worker) and on the
 * virtual one (a test app): canvases, a failing chain with an error callback,
 * retries with backoff, a countdown, an expiry, a rate limit. Durations are
 * short so the real run takes well under a second.
 */
const scenario = async (app: App, now: () => number) => {
  const start = now();
  const starts: Record<string, number[]> = { limited: [], flaky: [], later: [] };
  const add = app.task("add", (x: number, y: number) => x + y);
  const tsum = app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
  const boom = app.task("boom", (_x: number): number => {
    throw new Error("boom");
  });
  const failures: string[] = [];
  const onFail = app.task("on-fail", (failure: TaskFailure) => {
    failures.push(`${failure.task}: ${withoutIds(failure.error.message)}`);
  });
  let attempts = 0;
  const flaky = app.task(
    "flaky",
    () => {
      starts.flaky.push(now() - start);
      if (++attempts < 3) throw new Error(`attempt ${attempts}`);
      return attempts;
    },
    { retry: { max: 4, delay: 50, backoff: 2 } },
  );
  const later = app.task("later", (label: string) => {
    starts.later.push(now() - start);
    return label;
  });
  const limited = app.task(
    "limited",
    (n: number) => {
      starts.limited.push(now() - start);
      return n * n;
    },
    { rateLimit: { rate: "10/s", burst: 1 } },
  );

  const results: Record<string, AsyncResult<unknown>> = {
    chain: await chain(add.s(1, 1), add.s(2), add.s(3)).apply(),
    group: await group(add.s(1, 1), add.s(2, 2), add.s(3, 3)).apply(),
    chord: await chord(group(add.s(1, 1), add.s(2, 2)), tsum.s()).apply(),
    failedChain: await chain(add.s(1, 1), boom.s(), add.s(1)).onError(onFail.s()).apply(),
    flaky: await flaky.delay(),
    later: await later.applyAsync(["on time"], { countdown: 150 }),
    expired: await later.applyAsync(["too late"], { countdown: 200, expires: 100 }),
  };
  for (let n = 1; n <= 5; n++) results[`limited${n}`] = await limited.delay(n);
  return { results, starts, failures, attemptsOf: () => attempts };
};

type Outcome = Record<string, { state: string; value?: unknown; error?: string }>;

const outcomes = async (results: Record<string, AsyncResult<unknown>>): Promise<Outcome> => {
  const outcome: Outcome = {};
  for (const [name, result] of Object.entries(results)) {
    const state = await result.state();
    try {
      outcome[name] = { state, value: await result.get({ timeout: 0 }) };
    } catch (error) {
      outcome[name] = { state, error: withoutIds((error as Error).message) };
    }
  }
  return outcome;
};

describe("the virtual clock runs work as the real clock does", () => {
  it("gives the same results, states, retries and order of starts for canvases, retries, eta, expiry and rate limits", async (c) => {
    const real = createApp({ log: () => {} });
    c.after(() => real.close());
    await real.worker({ concurrency: 8 }).start();
    const onReal = await scenario(real, Date.now);
    // Waits on each result's own completion (a failure or revocation settles it too).
    await Promise.all(
      Object.values(onReal.results).map((result) => result.get({ timeout: scaled(5_000) }).catch(() => undefined)),
    );
    const realOutcome = await outcomes(onReal.results);

    const t = await createTestApp({ log: () => {} });
    c.after(() => t.close());
    const onVirtual = await scenario(t.app, t.clock.now);
    const started = performance.now();
    await t.clock.advance("1s");
    const virtualElapsed = performance.now() - started;
    const virtualOutcome = await outcomes(onVirtual.results);

    assert.deepEqual(virtualOutcome, realOutcome);
    assert.deepEqual(virtualOutcome.chain, { state: "SUCCESS", value: 7 });
    assert.deepEqual(virtualOutcome.chord, { state: "SUCCESS", value: 6 });
    assert.equal(virtualOutcome.failedChain.state, "FAILURE");
    assert.equal(virtualOutcome.flaky.value, 3);
    assert.equal(virtualOutcome.expired.state, "REVOKED");
    assert.deepEqual(onVirtual.failures, onReal.failures);
    assert.equal(onVirtual.attemptsOf(), onReal.attemptsOf());
    assert.equal(onVirtual.starts.limited.length, 5);
    assert.equal(onReal.starts.limited.length, 5);

    // On the virtual clock the times are exact: backoff 50 then 100 ms, countdown 150 ms, one token per 100 ms.
    assert.deepEqual(onVirtual.starts.flaky, [0, 50, 150]);
    assert.deepEqual(onVirtual.starts.later, [150]);
    assert.deepEqual(onVirtual.starts.limited, [0, 100, 200, 300, 400]);
    // On the real clock nothing starts before its time.
    onReal.starts.flaky.forEach((at, i) => assert.ok(at >= [0, 50, 150][i], `flaky attempt ${i + 1} at ${at} ms`));
    assert.ok(onReal.starts.later[0] >= 150, `countdown task at ${onReal.starts.later[0]} ms`);
    onReal.starts.limited.forEach((at, i) => assert.ok(at >= i * 100 - 5, `rate-limited start ${i + 1} at ${at} ms`));
    assert.ok(virtualElapsed < scaled(1_000), `a virtual second took ${virtualElapsed} ms`);
  });
});
