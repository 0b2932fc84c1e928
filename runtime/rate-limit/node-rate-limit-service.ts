// The rate limits a broker node keeps for every process connected to it
// (ops `rate.*`, declared in rate-limit-operations.ts): the buckets of
// global-scope limits, so that any number of workers together stay under a
// limit, and the limit changes made at run time, pushed (Notify, topic
// "rate-limit") to every subscribed connection.
//
// A change made with `rate.set` wins over the limit a worker asks with.
import type { BrokerNode } from "../../broker/node/node-server.ts";
import type { NodeConnection } from "../../broker/node/node-connection.ts";
import { BucketTable, bucketId, type BucketTableOptions } from "./bucket-table.ts";
import type { BucketLimit } from "./token-bucket.ts";
import { InvalidArgumentError } from "../../broker/errors.ts";
import { rateLimitOperations } from "./rate-limit-operations.ts";

/**
 * The Notify topic on which the node pushes limit changes to subscribed connections.
 *
 * @example
 * const node = await BrokerNode.start({ port: 5690 });
 * serveResults(node);
 * serveRateLimits(node);
 */
export const RATE_LIMIT_TOPIC = "rate-limit";

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
  node.serve(rateLimitOperations, {
    take: ([task, key, count, periodMs, burst, want]) => {
      if (!(want >= 1))
        throw new InvalidArgumentError({
          argument: "tokens wanted",
          reason: `rate.take wants at least 1 token, got ${want}`,
        });
      const changed = changes.get(task);
      if (changed === null) return [want, 0];
      const limit = changed ?? checkedLimit(count, periodMs, burst);
      const grant = buckets.take(bucketId(task, key ?? undefined), limit, want);
      return [grant.granted, grant.waitMs];
    },
    refund: ([id, tokens]) => {
      buckets.refund(id, tokens);
      return null;
    },
    set: ([task, wire]) => {
      const limit = wire === null ? null : checkedLimit(wire[0], wire[1], wire[2]);
      changes.set(task, limit);
      for (const watcher of watchers) watcher.notify(RATE_LIMIT_TOPIC, [task, wire]);
      return null;
    },
    watch: (_args, connection) => {
      if (!watchers.has(connection)) {
        watchers.add(connection);
        connection.onClose(() => watchers.delete(connection));
      }
      return [...changes].map(([task, limit]) => [
        task,
        limit === null ? null : [limit.count, limit.periodMs, limit.burst],
      ]);
    },
  });
  node.requireAdmin(rateLimitOperations, ["set"]);
  return buckets;
};

const checkedLimit = (count: number, periodMs: number, burst: number): BucketLimit => {
  if (!(count > 0) || !(periodMs > 0) || !Number.isInteger(burst) || burst < 1) {
    throw new InvalidArgumentError({
      argument: "rate limit",
      reason: `a rate limit needs a positive count, period and integer burst, got ${count} per ${periodMs} ms, burst ${burst}`,
    });
  }
  return { count, periodMs, burst };
};
