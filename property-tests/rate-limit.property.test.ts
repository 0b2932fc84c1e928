/**
 * Property tests of rate limiting, on a clock the test controls: random
 * limits, scopes, keys, numbers of workers and slots, arrivals and task
 * durations, run through the workers' rate gates (the code a worker uses to
 * decide when a limited task starts), with node's mock timers standing in
 * for time. Every start is recorded with its time, worker and key.
 *
 * - Over any window of length T, the starts sharing a bucket (per key, and
 *   per worker with scope "worker"; across all workers with scope "global")
 *   never exceed burst + rate x T.
 * - With demand always present, each bucket's starts reach burst + rate x H
 *   over a horizon H, within a small tolerance (a timer may fire a tick late,
 *   which a bucket of one token cannot bank): no starvation, no lost tokens.
 * - A limit changed mid-run: windows that start after the change never
 *   exceed the new burst + new rate x T.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it, mock } from "node:test";
import fc from "fast-check";
import { Codec } from "../broker/codec.ts";
import type { Delivery } from "../broker/envelope.ts";
import type { Consumer, Transport } from "../broker/transport.ts";
import { BucketTable } from "../runtime/rate-limit/bucket-table.ts";
import { RateGate } from "../runtime/rate-limit/rate-gate.ts";
import type { RateScope } from "../runtime/rate-limit/rate-setting.ts";
import { RateLimitTable } from "../runtime/rate-limit/limits-in-force.ts";
import { toEnvelope } from "../runtime/task-message.ts";
import type { BucketLimit } from "../runtime/rate-limit/token-bucket.ts";
import { LocalTokenSource } from "../runtime/rate-limit/token-source.ts";

interface Start {
  readonly at: number;
  readonly worker: number;
  readonly key: string;
}

interface Scenario {
  readonly limit: BucketLimit;
  readonly scope: RateScope;
  readonly keyed: boolean;
  readonly slots: readonly number[];
  readonly arrivals: readonly { at: number; worker: number; key: number }[];
  readonly durations: readonly number[];
  readonly horizon: number;
  readonly change?: { readonly at: number; readonly limit: BucketLimit };
}

const codec = new Codec();
const CONSUMER = { tag: "c", queue: "q", ack() {}, nack() {}, cancel: async () => {} } as Consumer;
const TRANSPORT = { isRevoked: () => false } as unknown as Transport;

const deliveryFor = (n: number, key: string): Delivery => ({
  envelope: toEnvelope({ id: `m${n}`, task: "t", args: [key], options: {}, retries: 0 }, codec, 0),
  queue: "q",
  deliveryTag: n,
  redelivered: false,
  deliveryCount: 1,
});

/** Run a scenario on mock timers; returns every start. */
const simulate = (scenario: Scenario): Start[] => {
  mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
  try {
    const clock = () => Date.now();
    const table = new RateLimitTable();
    table.register("t", {
      ...scenario.limit,
      rate: "t",
      scope: scenario.scope,
      ...(scenario.keyed ? { key: (key: string) => key } : {}),
    });
    const global = new LocalTokenSource(new BucketTable({ now: clock }));
    const starts: Start[] = [];
    let durationIndex = 0;
    const gates = scenario.slots.map((slots, worker) => {
      let running = 0;
      const gate: RateGate = new RateGate(
        { table, global, local: new LocalTokenSource(new BucketTable({ now: clock })), maxHeld: 1_000_000, now: clock },
        {
          name: `w${worker}`,
          transport: TRANSPORT,
          codec,
          freeSlots: () => slots - running,
          start: (delivery) => {
            running++;
            starts.push({ at: Date.now(), worker, key: scenario.keyed ? String(delivery.envelope.headers.key) : "" });
            const duration = scenario.durations[durationIndex++ % scenario.durations.length];
            setTimeout(() => {
              running--;
              gate.pump();
            }, duration);
          },
          admit: () => assert.fail("no limit is removed in these runs"),
          settle: () => {},
          log: (message) => assert.fail(message),
        },
      );
      return gate;
    });
    scenario.arrivals.forEach(({ at, worker, key }, n) => {
      setTimeout(() => {
        const delivery = deliveryFor(n, `k${key}`);
        (delivery.envelope.headers as Record<string, unknown>).key = `k${key}`;
        assert.ok(gates[worker % gates.length].hold(delivery, CONSUMER));
      }, at);
    });
    if (scenario.change !== undefined) {
      const { at, limit } = scenario.change;
      setTimeout(() => table.override("t", limit), at);
    }
    // One ms at a time: a timer's callback then sees the clock at its own due time.
    for (let t = 0; t < scenario.horizon; t++) mock.timers.tick(1);
    for (const gate of gates) gate.stop();
    return starts;
  } finally {
    mock.timers.reset();
  }
};

/** The starts sharing a bucket, each group sorted by time. */
const byBucket = (starts: readonly Start[], scope: RateScope): Start[][] => {
  const groups = new Map<string, Start[]>();
  for (const start of starts) {
    const id = scope === "worker" ? `${start.worker}/${start.key}` : start.key;
    let group = groups.get(id);
    if (group === undefined) groups.set(id, (group = []));
    group.push(start);
  }
  return [...groups.values()].map((group) => group.sort((a, b) => a.at - b.at));
};

/** Fail if some window [from, from + T] holds more than burst + rate x T starts (only windows starting in [fromAt, untilAt)). */
const assertUnderLimit = (
  group: readonly Start[],
  limit: BucketLimit,
  fromAt = -Infinity,
  untilAt = Infinity,
): void => {
  for (let i = 0; i < group.length; i++) {
    if (group[i].at < fromAt || group[i].at >= untilAt) continue;
    for (let j = i; j < group.length; j++) {
      if (group[j].at >= untilAt) break;
      const windowMs = group[j].at - group[i].at;
      const allowed = limit.burst + (limit.count * windowMs) / limit.periodMs;
      assert.ok(
        j - i + 1 <= allowed,
        `${j - i + 1} starts in ${windowMs} ms from ${group[i].at}; the limit allows ${allowed}`,
      );
    }
  }
};

const limitArb = fc.oneof(
  fc.record({
    count: fc.integer({ min: 1, max: 40 }),
    periodMs: fc.constant(1_000),
    burst: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({
    count: fc.integer({ min: 30, max: 1_200 }),
    periodMs: fc.constant(60_000),
    burst: fc.integer({ min: 1, max: 5 }),
  }),
);

const scenarioArb = (withChange: boolean) =>
  fc
    .record({
      limit: limitArb,
      scope: fc.constantFrom<RateScope>("global", "worker"),
      keyed: fc.boolean(),
      slots: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
      arrivals: fc.array(fc.record({ at: fc.integer({ min: 0, max: 1_500 }), worker: fc.nat(2), key: fc.nat(2) }), {
        minLength: 1,
        maxLength: 120,
      }),
      durations: fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 8 }),
      change: withChange
        ? fc
            .record({ at: fc.integer({ min: 1, max: 1_500 }), limit: limitArb })
            .map((change) => change as Scenario["change"])
        : fc.constant(undefined),
    })
    .map((scenario): Scenario => ({ ...scenario, horizon: 2_000 }));

afterEach(() => mock.timers.reset());

describe("rate limiting (property)", () => {
  it("never starts more than burst + rate x T in any window T, for every scope and key", () => {
    fc.assert(
      fc.property(scenarioArb(false), (scenario) => {
        const starts = simulate(scenario);
        for (const group of byBucket(starts, scenario.scope)) assertUnderLimit(group, scenario.limit);
      }),
      { numRuns: 60 },
    );
  });

  it("reaches the limit with demand always present: no starvation, no lost tokens", () => {
    fc.assert(
      fc.property(
        limitArb,
        fc.constantFrom<RateScope>("global", "worker"),
        fc.boolean(),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 5 }),
        (limit, scope, keyed, workers, duration) => {
          const horizon = 3_000;
          const expected = limit.burst + (limit.count * horizon) / limit.periodMs;
          // More demand than the limit can serve in the horizon, present from the start, on every worker and key.
          const perWorkerAndKey = Math.ceil(expected) + 5;
          const arrivals = [];
          for (let worker = 0; worker < workers; worker++)
            for (let key = 0; key < (keyed ? 2 : 1); key++)
              for (let n = 0; n < perWorkerAndKey; n++) arrivals.push({ at: 0, worker, key });
          const starts = simulate({
            limit,
            scope,
            keyed,
            slots: Array(workers).fill(4),
            arrivals,
            durations: [duration],
            horizon,
          });
          const groups = byBucket(starts, scope);
          assert.equal(groups.length, (keyed ? 2 : 1) * (scope === "worker" ? workers : 1));
          for (const group of groups) {
            assertUnderLimit(group, limit);
            // A timer fires up to a tick late, and a bucket holding a single token cannot bank that tick:
            // at worst one ms per token is lost. And the horizon's last token may fall a tick short of being taken.
            const tokenMs = limit.periodMs / limit.count;
            const atWorst = limit.burst + horizon / (tokenMs + 1);
            assert.ok(
              group.length >= Math.floor(atWorst) - 1,
              `${group.length} starts in ${horizon} ms; the limit allows ${expected}, at worst ${atWorst}`,
            );
          }
        },
      ),
      // Found once: 29/s with a burst of 1 ran every 35 ms instead of 34.5 (timer lateness, see above).
      { numRuns: 40, examples: [[{ count: 29, periodMs: 1_000, burst: 1 }, "global", false, 1, 0]] },
    );
  });

  it("lets no burst beyond the new bucket through after a limit changes mid-run", () => {
    fc.assert(
      fc.property(scenarioArb(true), (scenario) => {
        const starts = simulate(scenario);
        const change = scenario.change!;
        for (const group of byBucket(starts, scenario.scope)) {
          assertUnderLimit(group, scenario.limit, -Infinity, change.at);
          assertUnderLimit(group, change.limit, change.at + 1);
        }
      }),
      { numRuns: 60 },
    );
  });
});
