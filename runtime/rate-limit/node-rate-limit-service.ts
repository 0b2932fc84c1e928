import type { BrokerNode } from "../../broker/node/node-server.ts";
import type { NodeConnection } from "../../broker/node/node-connection.ts";
import { BucketTable, bucketId, type BucketTableOptions } from "./bucket-table.ts";
import type { BucketLimit } from "./token-bucket.ts";

/**
 * The rate limits a broker node keeps for every process connected to it
 * (ops `rate.*`): the buckets of global-scope limits, so that any number of
 * workers together stay under a limit, and the limit changes made at run
 * time, pushed (Notify, topic "rate-limit") to every subscribed connection.
 *
 * - `rate.take [task, key|nil, count, periodMs, burst, want]` → `[granted, waitMs]`:
 *   up to `want` tokens now; when fewer, the ms until the next is due (the
 *   worker waits that long instead of asking again and again).
 * - `rate.refund [bucketId, tokens]` (no reply): tokens granted and not used.
 * - `rate.set [task, [count, periodMs, burst] | nil]`: change (or, nil, remove) a task's limit everywhere.
 * - `rate.watch []` → `[[task, limit|nil], ...]`: subscribe to changes; the changes so far.
 *
 * A change made with `rate.set` wins over the limit a worker asks with.
 *
 * @example
 * const node = await BrokerNode.start({ port: 5690 });
 * serveResults(node);
 * serveRateLimits(node);
 */
export const RATE_LIMIT_TOPIC = "rate-limit";

/** A limit on the wire: [count, periodMs, burst]. */
export type WireLimit = readonly [number, number, number];

/**
 * Serve the cluster's shared token buckets on a broker node (ops `rate.*`), so
 * a task's global rate limit holds across every worker connected to it.
 *
 * @example
 * const node = await BrokerNode.start({ port: 5690 });
 * serveRateLimits(node);
 */
export const serveRateLimits = (node: BrokerNode, options: BucketTableOptions = {}): BucketTable => {
  const buckets = new BucketTable(options);
  const changes = new Map<string, BucketLimit | null>();
  const watchers = new Set<NodeConnection>();
  node.serve("rate", (op, args, connection) => {
    switch (op) {
      case "take": {
        const [task, key, count, periodMs, burst, want] = args as [string, string | null, number, number, number, number];
        if (typeof task !== "string" || !(want >= 1)) throw new Error("rate.take needs [task, key, count, periodMs, burst, want]");
        const changed = changes.get(task);
        if (changed === null) return [want, 0];
        const limit = changed ?? checkedLimit(count, periodMs, burst);
        const grant = buckets.take(bucketId(task, key ?? undefined), limit, want);
        return [grant.granted, grant.waitMs];
      }
      case "refund":
        buckets.refund(String(args[0]), Number(args[1]));
        return null;
      case "set": {
        const task = String(args[0]);
        const wire = args[1] as WireLimit | null;
        const limit = wire === null ? null : checkedLimit(wire[0], wire[1], wire[2]);
        changes.set(task, limit);
        for (const watcher of watchers) watcher.notify(RATE_LIMIT_TOPIC, [task, wire]);
        return null;
      }
      case "watch":
        if (!watchers.has(connection)) {
          watchers.add(connection);
          connection.onClose(() => watchers.delete(connection));
        }
        return [...changes].map(([task, limit]) => [task, limit === null ? null : [limit.count, limit.periodMs, limit.burst]]);
      default:
        throw new Error(`unknown rate op '${op}'`);
    }
  });
  return buckets;
};

const checkedLimit = (count: number, periodMs: number, burst: number): BucketLimit => {
  if (!(count > 0) || !(periodMs > 0) || !Number.isInteger(burst) || burst < 1) {
    throw new Error(`a rate limit needs a positive count, period and integer burst, got ${count} per ${periodMs} ms, burst ${burst}`);
  }
  return { count, periodMs, burst };
};
