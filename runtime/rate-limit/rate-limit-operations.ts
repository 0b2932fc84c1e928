/**
 * The rate limits' operations on a broker node (prefix `rate`), declared once
 * for the node's service (node-rate-limit-service.ts) and its client
 * (node-rate-limit-client.ts).
 *
 * - `rate.take [task, key|nil, count, periodMs, burst, want]` → `[granted, waitMs]`:
 *   up to `want` tokens now; when fewer, the ms until the next is due (the
 *   worker waits that long instead of asking again and again).
 * - `rate.refund [bucketId, tokens]` (no reply): tokens granted and not used.
 * - `rate.set [task, [count, periodMs, burst] | nil]`: change (or, nil, remove) a task's limit everywhere.
 * - `rate.watch []` → `[[task, limit|nil], ...]`: subscribe to changes; the changes so far.
 */
import { check, operation, operationGroup } from "../../broker/node/operations.ts";

/** A limit on the wire: [count, periodMs, burst]. */
export type WireLimit = readonly [count: number, periodMs: number, burst: number];

export const rateLimitOperations = operationGroup("rate", {
  take: operation<[granted: number, waitMs: number]>()(
    check.string("task name"),
    check.optional(check.string("key")),
    check.number("count"),
    check.number("period ms"),
    check.number("burst"),
    check.number("tokens wanted"),
  ),
  refund: operation<null>()(check.string("bucket id"), check.number("tokens")),
  set: operation<null>()(check.string("task name"), check.optional(check.array<WireLimit>("limit"))),
  watch: operation<[task: string, limit: WireLimit | null][]>()(),
});
