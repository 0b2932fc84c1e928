// Rate limiting through a broker node, from a client: global buckets taken from the node,
// limit changes pushed by it, and a local fallback when the node serves no rate limits.
import { FrameType } from "../../broker/node/protocol.ts";
import type { NodeClient } from "../../broker/node/client/node-client.ts";
import { bucketId } from "./bucket-table.ts";
import type { LimitOverride, RateLimitTable } from "./limits-in-force.ts";
import { LocalTokenSource, type TokenSource } from "./token-source.ts";
import { RATE_LIMIT_TOPIC } from "./node-rate-limit-service.ts";
import { rateLimitOperations as ops, type WireLimit } from "./rate-limit-operations.ts";
import type { BucketLimit, Grant } from "./token-bucket.ts";

/**
 * Rate limiting through a broker node, from a client: global buckets are
 * the node's (ops `rate.*`, served by serveRateLimits), and limit changes
 * made anywhere arrive as a push (Notify, topic "rate-limit") and are
 * applied to this process's table. On every (re)connection the client
 * subscribes again and reads the changes made so far.
 *
 * A node that does not serve rate limits cannot keep a bucket for the whole
 * cluster: global limits then fall back to a bucket in this process, with
 * a logged warning saying so.
 */
export class RemoteRateLimits implements TokenSource {
  private fallback: LocalTokenSource | undefined;

  constructor(
    private readonly client: NodeClient,
    table: RateLimitTable,
    private readonly log: (message: string) => void,
  ) {
    client.onFrame(FrameType.Notify, (payload) => {
      const [topic, body] = payload as [string, unknown];
      if (topic !== RATE_LIMIT_TOPIC) return;
      const [task, limit] = body as [string, WireLimit | null];
      table.override(task, fromWire(limit));
    });
    client.onConnected(async () => {
      try {
        const changes = await client.callNow(ops.watch, []);
        for (const [task, limit] of changes) table.override(task, fromWire(limit));
      } catch (error) {
        if (!isUnknownOp(error))
          log(
            `rate limits: could not subscribe to limit changes: ${error instanceof Error ? error.message : String(error)}`,
          );
      }
    });
  }

  take(task: string, key: string | undefined, limit: BucketLimit, want: number): Grant | Promise<Grant> {
    if (this.fallback !== undefined) return this.fallback.take(task, key, limit, want);
    return this.client.call(ops.take, [task, key ?? null, limit.count, limit.periodMs, limit.burst, want]).then(
      ([granted, waitMs]) => ({ granted, waitMs }),
      (error: unknown) => {
        if (!isUnknownOp(error)) throw error;
        this.log(
          `rate limits: the node at ${this.client.url} does not keep rate limits (start it with 'celerity broker', or call serveRateLimits(node)); ` +
            `global limits are kept per process until it does`,
        );
        this.fallback = new LocalTokenSource();
        return this.fallback.take(task, key, limit, want);
      },
    );
  }

  refund(task: string, key: string | undefined, tokens: number): void {
    if (this.fallback !== undefined) return this.fallback.refund(task, key, tokens);
    this.client.tell(ops.refund, [bucketId(task, key), tokens]);
  }

  /** Record a change on the node, which pushes it to every subscribed process. */
  async change(task: string, limit: LimitOverride): Promise<void> {
    await this.client.call(ops.set, [task, toWire(limit)]);
  }
}

const toWire = (limit: LimitOverride): WireLimit | null =>
  limit === null ? null : [limit.count, limit.periodMs, limit.burst];
const fromWire = (limit: WireLimit | null): LimitOverride =>
  limit === null ? null : { count: limit[0], periodMs: limit[1], burst: limit[2] };

const isUnknownOp = (error: unknown): boolean => error instanceof Error && /unknown op 'rate\./.test(error.message);
