// Where the tokens of a rate limit come from (TokenSource), and the source of buckets in
// this process (LocalTokenSource).
import { BucketTable, bucketId } from "./bucket-table.ts";
import type { BucketLimit, Grant } from "./token-bucket.ts";

/**
 * Where the tokens of a rate limit come from: buckets in this process
 * (LocalTokenSource: a worker's own, or every worker's with the embedded
 * broker) or on a broker node (RemoteRateLimits).
 */
export interface TokenSource {
  /** Take up to `want` tokens from the bucket of `task` (and `key`): at once in this process, as a promise over the network. */
  take(task: string, key: string | undefined, limit: BucketLimit, want: number): Grant | Promise<Grant>;
  /** Give back tokens taken and not used. */
  refund(task: string, key: string | undefined, tokens: number): void;
}

/** Buckets in this process. */
export class LocalTokenSource implements TokenSource {
  constructor(readonly buckets: BucketTable = new BucketTable()) {}

  take(task: string, key: string | undefined, limit: BucketLimit, want: number): Grant {
    return this.buckets.take(bucketId(task, key), limit, want);
  }

  refund(task: string, key: string | undefined, tokens: number): void {
    this.buckets.refund(bucketId(task, key), tokens);
  }
}
