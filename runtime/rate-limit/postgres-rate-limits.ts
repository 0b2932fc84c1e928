// Global rate-limit buckets in PostgreSQL, for apps whose results live there
// and whose broker keeps no shared state (RabbitMQ): the same token-bucket
// arithmetic as the node's and Redis's, in one function call per take, on
// the database's clock, under the bucket row's lock.
import type { PostgresResultStore } from "../results/postgres-result-store.ts";
import { bucketId } from "./bucket-table.ts";
import type { LimitOverride, RateLimitTable } from "./limits-in-force.ts";
import type { TokenSource } from "./token-source.ts";
import type { BucketLimit, Grant } from "./token-bucket.ts";

/** The tables and functions, made once per schema (idempotent; under an advisory lock, as many processes may start at once). */
const schemaStatements = (s: string): string[] => [
  `CREATE TABLE IF NOT EXISTS ${s}.rate_buckets (
    bucket text PRIMARY KEY, credit double precision NOT NULL, last_ms double precision NOT NULL,
    count double precision NOT NULL, period double precision NOT NULL, burst double precision NOT NULL,
    expires_at bigint NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS ${s}.rate_limits (task text PRIMARY KEY, rate_limit text NOT NULL)`,
  // Credit is kept in token × periodMs, so integer rates are exact, as in TokenBucket.
  `CREATE OR REPLACE FUNCTION ${s}.take_tokens(
      p_bucket text, p_count double precision, p_period double precision, p_burst double precision, p_want integer,
      OUT granted integer, OUT wait_ms integer) AS $$
    DECLARE
      now_ms double precision := floor(extract(epoch from clock_timestamp()) * 1000);
      b ${s}.rate_buckets%ROWTYPE;
      v_credit double precision;
    BEGIN
      INSERT INTO ${s}.rate_buckets VALUES (p_bucket, p_burst * p_period, now_ms, p_count, p_period, p_burst, 0)
        ON CONFLICT (bucket) DO NOTHING;
      SELECT * INTO b FROM ${s}.rate_buckets WHERE bucket = p_bucket FOR UPDATE;
      v_credit := b.credit;
      IF now_ms > b.last_ms THEN v_credit := least(b.burst * b.period, v_credit + (now_ms - b.last_ms) * b.count); END IF;
      IF b.count <> p_count OR b.period <> p_period OR b.burst <> p_burst THEN
        v_credit := least(v_credit / b.period, p_burst) * p_period;
      END IF;
      granted := least(p_want, floor(v_credit / p_period))::integer;
      v_credit := v_credit - granted * p_period;
      wait_ms := 0;
      IF granted < p_want THEN wait_ms := greatest(1, ceil((p_period - v_credit) / p_count))::integer; END IF;
      UPDATE ${s}.rate_buckets SET credit = v_credit, last_ms = greatest(now_ms, b.last_ms),
        count = p_count, period = p_period, burst = p_burst,
        expires_at = (now_ms + ceil((p_burst * p_period - v_credit) / p_count) + 1000)::bigint
        WHERE bucket = p_bucket;
    END $$ LANGUAGE plpgsql`,
  `CREATE OR REPLACE FUNCTION ${s}.refund_tokens(p_bucket text, p_tokens double precision) RETURNS void AS $$
    DECLARE
      now_ms double precision := floor(extract(epoch from clock_timestamp()) * 1000);
      b ${s}.rate_buckets%ROWTYPE;
      v_credit double precision;
    BEGIN
      SELECT * INTO b FROM ${s}.rate_buckets WHERE bucket = p_bucket FOR UPDATE;
      IF NOT FOUND THEN RETURN; END IF;
      v_credit := b.credit;
      IF now_ms > b.last_ms THEN v_credit := least(b.burst * b.period, v_credit + (now_ms - b.last_ms) * b.count); END IF;
      v_credit := least(b.burst * b.period, v_credit + p_tokens * b.period);
      UPDATE ${s}.rate_buckets SET credit = v_credit, last_ms = greatest(now_ms, b.last_ms),
        expires_at = (now_ms + ceil((b.burst * b.period - v_credit) / b.count) + 1000)::bigint
        WHERE bucket = p_bucket;
    END $$ LANGUAGE plpgsql`,
];

/** A limit as the table keeps it: "count periodMs burst", or "" for a removed limit. */
const toText = (limit: LimitOverride): string =>
  limit === null ? "" : `${limit.count} ${limit.periodMs} ${limit.burst}`;
const fromText = (text: string): LimitOverride => {
  if (text === "") return null;
  const [count, periodMs, burst] = text.split(" ").map(Number);
  return { count, periodMs, burst };
};

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Rate limiting through PostgreSQL: global-scope buckets in the result
 * store's schema (`rate_buckets`), taken from and refunded to by the
 * functions `take_tokens` and `refund_tokens`, so every worker on every
 * machine together stays under a limit. Changes made with
 * `app.control.rateLimit` are kept in `rate_limits` (read by processes that
 * start later) and announced with `pg_notify`. Expired buckets (full again
 * and idle) are deleted by the store's sweep.
 *
 * @example
 * const results = new PostgresResultStore("postgres://postgres@127.0.0.1:5432/app");
 * const limits = new PostgresRateLimits(results, new RateLimitTable(), console.error);
 */
export class PostgresRateLimits implements TokenSource {
  /** Settles once the tables exist, the changes made so far are applied and later ones will be heard. */
  readonly ready: Promise<void>;
  private readonly schema: string;

  constructor(
    private readonly store: PostgresResultStore,
    private readonly table: RateLimitTable,
    private readonly log: (message: string) => void,
  ) {
    this.schema = store.schemaName;
    this.ready = this.prepare();
    this.ready.catch((error: unknown) =>
      log(`rate limits: could not prepare the PostgreSQL buckets: ${describe(error)}`),
    );
    // A bucket full again and idle is the same as none: its row goes.
    setInterval(() => {
      this.ready
        .then(() =>
          this.store.sql("sweep rate-limit buckets", `DELETE FROM ${this.schema}.rate_buckets WHERE expires_at < $1`, [
            Date.now(),
          ]),
        )
        .catch(() => {});
    }, 60_000).unref();
  }

  async take(task: string, key: string | undefined, limit: BucketLimit, want: number): Promise<Grant> {
    await this.ready;
    const { rows } = await this.store.sql(
      "take rate-limit tokens",
      `SELECT granted, wait_ms FROM ${this.schema}.take_tokens($1, $2, $3, $4, $5)`,
      [bucketId(task, key), limit.count, limit.periodMs, limit.burst, want],
    );
    const row = rows[0] as { granted: number; wait_ms: number };
    return { granted: row.granted, waitMs: row.wait_ms };
  }

  refund(task: string, key: string | undefined, tokens: number): void {
    this.ready
      .then(() =>
        this.store.sql("refund rate-limit tokens", `SELECT ${this.schema}.refund_tokens($1, $2)`, [
          bucketId(task, key),
          tokens,
        ]),
      )
      .catch((error: unknown) =>
        this.log(`rate limits: refunding ${tokens} tokens of '${task}' failed: ${describe(error)}`),
      );
  }

  /** Record a change and announce it to every process on the same schema, in one transaction-free statement pair. */
  async change(task: string, limit: LimitOverride): Promise<void> {
    await this.ready;
    const text = toText(limit);
    await this.store.sql(
      "change a rate limit",
      `WITH saved AS (
         INSERT INTO ${this.schema}.rate_limits (task, rate_limit) VALUES ($1, $2)
         ON CONFLICT (task) DO UPDATE SET rate_limit = EXCLUDED.rate_limit RETURNING task)
       SELECT pg_notify($3, $1 || E'\\t' || $2) FROM saved`,
      [task, text, this.store.channelFor("rate_limit")],
    );
  }

  private async prepare(): Promise<void> {
    const statements = schemaStatements(this.schema);
    await this.store.sql(
      "prepare rate-limit buckets",
      `DO $prepare$ BEGIN
         PERFORM pg_advisory_xact_lock(hashtext('celerity.rate-limits.${this.schema}'));
         ${statements.map((statement) => `EXECUTE ${dollarQuote(statement)};`).join("\n")}
       END $prepare$`,
      [],
    );
    await this.store.listen("rate_limit", (payload) => {
      const tab = payload.lastIndexOf("\t");
      this.table.override(payload.slice(0, tab), fromText(payload.slice(tab + 1)));
    });
    const { rows } = await this.store.sql(
      "read rate limits",
      `SELECT task, rate_limit FROM ${this.schema}.rate_limits`,
      [],
    );
    for (const row of rows as { task: string; rate_limit: string }[])
      this.table.override(row.task, fromText(row.rate_limit));
  }
}

/** A statement as a dollar-quoted literal for EXECUTE (its own body uses `$$`). */
const dollarQuote = (statement: string): string => `$stmt$${statement}$stmt$`;
