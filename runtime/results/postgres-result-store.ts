// The result store on PostgreSQL: atomic writes decided by row locks, waiters woken by
// pg_notify on the commit, rows queryable with SQL and expired after their last write.
import { decode, encode } from "@msgpack/msgpack";
import { Data } from "effect";
import { createRequire } from "node:module";
import type pg from "pg";
import type { MessageGraph } from "../../dsl/graph.ts";
import type { RemoteErrorInfo, TaskState } from "../../dsl/result.ts";
import { READY_STATES } from "../../dsl/result.ts";
import {
  DEFAULT_RESULT_TTL_MS,
  type FinalOutcome,
  type ResultRecord,
  type ResultStore,
  type StateDetails,
} from "./result-store.ts";
import { ResultWaiters } from "./result-waiters.ts";

/**
 * Settings of a PostgresResultStore; every field is optional.
 *
 * @example
 * const results = new PostgresResultStore("postgres://postgres@127.0.0.1:5432/app", { schema: "jobs", ttlMs: 7 * 24 * 60 * 60 * 1_000 });
 */
export interface PostgresResultStoreOptions {
  /** The schema holding the tables (created if missing). Default "celerity"; the url's `?schema=` sets it too. */
  readonly schema?: string;
  /** Records, graphs, joins and claims expire this long after their last write. Default one day. */
  readonly ttlMs?: number;
  /** Most connections kept open. Default 10. */
  readonly poolSize?: number;
  /** Where the store reports a lost notification connection. Default console.error. */
  readonly log?: (message: string) => void;
}

/**
 * PostgreSQL could not be reached, or the connection broke before the answer: the write may or may not have been applied.
 *
 * @example
 * await results.get(id).catch((error) => {
 *   if (error instanceof PostgresConnectionLostError) return undefined; // PostgreSQL is down: try again later
 *   throw error;
 * });
 */
export class PostgresConnectionLostError extends Data.TaggedError("ConnectionLostError")<{
  readonly operation: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `lost the connection to PostgreSQL during results.${this.operation} (it may or may not have been applied): ${this.reason}`;
  }
}

/**
 * A schema name given in the url or the options that is not a plain identifier.
 *
 * @example
 * new PostgresResultStore("postgres://127.0.0.1/app?schema=my-jobs"); // throws: use my_jobs
 */
export class PostgresSchemaNameError extends Data.TaggedError("PostgresSchemaNameError")<{ readonly schema: string }> {
  override get message(): string {
    return `schema name ${JSON.stringify(this.schema)} is not a plain identifier (letters, digits and _, not starting with a digit)`;
  }
}

const require = createRequire(import.meta.url);
let client: typeof pg | undefined;
/** node-postgres, loaded on first use: an app that keeps no results in PostgreSQL does not pay for loading it. */
const postgres = (): typeof pg => (client ??= require("pg") as typeof pg);
const FINAL_STATES = "('SUCCESS','FAILURE','REVOKED')";

/**
 * The result store on PostgreSQL, for durability and for querying results
 * with SQL. Tables in its schema: `results` (one row per task: state, value
 * as msgpack bytes, error as JSON, retries, workflow step), `graphs`,
 * `joins` (the members arrived at each chord join, as an array) and
 * `claims`. Each write that must be atomic is one statement whose row lock
 * decides it: the first final state wins (`ON CONFLICT … WHERE state is not
 * final`), a join counts each member once, a claim is taken once. A
 * completion notifies (`pg_notify`) in its own transaction, so waiters in
 * every process wake on the commit, never by polling. Rows expire `ttlMs`
 * after their last write; each store deletes expired rows once a minute.
 *
 * @example
 * const app = createApp({ broker: "redis://127.0.0.1:6379/0", results: "postgres://postgres@127.0.0.1:5432/app" });
 * // SELECT id, state, error->>'message' FROM celerity.results WHERE state = 'FAILURE';
 */
export class PostgresResultStore implements ResultStore {
  private readonly pool: pg.Pool;
  private readonly schema: string;
  private readonly channel: string;
  private readonly ttl: number;
  private readonly waiters = new ResultWaiters();
  private readonly log: (message: string) => void;
  private readonly connectionString: string;
  private listener: pg.Client | undefined;
  private readonly channelListeners = new Map<string, Set<(payload: string) => void>>();
  private readonly ready: Promise<void>;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(url: string, options: PostgresResultStoreOptions = {}) {
    const parsed = new URL(url);
    const schema = options.schema ?? parsed.searchParams.get("schema") ?? "celerity";
    parsed.searchParams.delete("schema");
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(schema)) throw new PostgresSchemaNameError({ schema });
    this.schema = schema;
    this.channel = `celerity_results_${schema}`.toLowerCase();
    this.ttl = Math.ceil(options.ttlMs ?? DEFAULT_RESULT_TTL_MS);
    this.log = options.log ?? ((message) => console.error(message));
    this.connectionString = parsed.toString();
    this.pool = new (postgres().Pool)({ connectionString: this.connectionString, max: options.poolSize ?? 10 });
    this.pool.on("error", () => {});
    this.ready = this.prepare();
    this.ready.catch(() => {});
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, this.ttl));
    this.sweeper.unref();
  }

  async setState(id: string, task: string, state: TaskState, details?: StateDetails): Promise<void> {
    await this.write(id, task, state, details);
  }

  async start(id: string, task: string, details?: StateDetails): Promise<boolean> {
    return (await this.write(id, task, "STARTED", details)) === 1;
  }

  /** Record a non-final state unless a final one is recorded (one statement: the row lock decides); resolves to the rows written. */
  private async write(id: string, task: string, state: TaskState, details: StateDetails | undefined): Promise<number> {
    const now = Date.now();
    const t = `${this.schema}.results`;
    const result = await this.query(
      "setState",
      `INSERT INTO ${t} AS r (id, task, state, retries, updated_at, workflow, node, expires_at, info)
       VALUES ($1, $2, $3, COALESCE($4::integer, 0), $5, $6, $7, $8, $9)
       ON CONFLICT (id) DO UPDATE SET task = EXCLUDED.task, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at,
         expires_at = EXCLUDED.expires_at, retries = COALESCE($4::integer, r.retries),
         workflow = COALESCE($6, r.workflow), node = COALESCE($7, r.node), info = COALESCE($9, CASE WHEN r.expires_at < $5 THEN NULL ELSE r.info END),
         value = CASE WHEN r.expires_at < $5 THEN NULL ELSE r.value END, error = CASE WHEN r.expires_at < $5 THEN NULL ELSE r.error END
       WHERE r.state NOT IN ${FINAL_STATES} OR r.expires_at < $5
       RETURNING id`,
      [
        id,
        task,
        state,
        details?.retries ?? null,
        now,
        details?.workflow ?? null,
        details?.workflow === undefined ? null : (details.node ?? 0),
        now + this.ttl,
        details?.info === undefined
          ? null
          : Buffer.from(details.info.buffer, details.info.byteOffset, details.info.byteLength),
      ],
    );
    return result.rowCount ?? 0;
  }

  async complete(id: string, task: string, outcome: FinalOutcome): Promise<boolean> {
    const now = Date.now();
    const t = `${this.schema}.results`;
    const value =
      outcome.state === "SUCCESS"
        ? Buffer.from(outcome.value.buffer, outcome.value.byteOffset, outcome.value.byteLength)
        : null;
    const error = outcome.state === "SUCCESS" ? null : JSON.stringify(outcome.error);
    const result = await this.query(
      "complete",
      `WITH done AS (
         INSERT INTO ${t} AS r (id, task, state, value, error, retries, updated_at, expires_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, 0, $6, $7)
         ON CONFLICT (id) DO UPDATE SET task = EXCLUDED.task, state = EXCLUDED.state, value = EXCLUDED.value, error = EXCLUDED.error,
           updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at,
           retries = CASE WHEN r.expires_at < $6 THEN 0 ELSE r.retries END,
           info = CASE WHEN r.expires_at < $6 THEN NULL ELSE r.info END
         WHERE (r.state NOT IN ${FINAL_STATES} AND NOT ($9::boolean AND r.state = 'STARTED')) OR r.expires_at < $6
         RETURNING id)
       SELECT pg_notify($8, id) FROM done`,
      [
        id,
        task,
        outcome.state,
        value,
        error,
        now,
        now + this.ttl,
        this.channel,
        outcome.state === "REVOKED" && outcome.unlessStarted === true,
      ],
    );
    return result.rowCount === 1;
  }

  get(id: string): Promise<ResultRecord | undefined> {
    return this.read(id, "get");
  }

  async waitFinal(id: string, timeoutMs: number | undefined, onTimeout: () => Error): Promise<ResultRecord> {
    const { promise } = this.waiters.wait(id, timeoutMs, onTimeout);
    // The caller holds `promise`; a timeout while the subscription is being made must not count as unhandled meanwhile.
    promise.catch(() => {});
    // Listening first, then reading: a completion committed between the two is caught by one or the other.
    await this.listening();
    const current = await this.get(id);
    if (current !== undefined && READY_STATES.has(current.state)) this.waiters.wake(id, current);
    return promise;
  }

  async forget(id: string): Promise<void> {
    await this.query("forget", `DELETE FROM ${this.schema}.results WHERE id = $1`, [id]);
  }

  async saveGraph(graph: MessageGraph): Promise<void> {
    const now = Date.now();
    await this.query(
      "saveGraph",
      `INSERT INTO ${this.schema}.graphs (id, graph, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET graph = EXCLUDED.graph, expires_at = EXCLUDED.expires_at`,
      [graph.id, Buffer.from(encode(graph)), now + this.ttl],
    );
  }

  async graph(id: string): Promise<MessageGraph | undefined> {
    const result = await this.query(
      "graph",
      `SELECT graph FROM ${this.schema}.graphs WHERE id = $1 AND expires_at >= $2`,
      [id, Date.now()],
    );
    return result.rows.length === 0 ? undefined : (decode(result.rows[0].graph as Buffer) as MessageGraph);
  }

  async arrive(key: string, member: number): Promise<number> {
    const now = Date.now();
    const result = await this.query(
      "arrive",
      `INSERT INTO ${this.schema}.joins AS j (key, members, expires_at) VALUES ($1, ARRAY[$2::integer], $3)
       ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at,
         members = CASE WHEN j.expires_at < $4 THEN ARRAY[$2::integer] WHEN $2::integer = ANY(j.members) THEN j.members ELSE j.members || $2::integer END
       RETURNING cardinality(members) AS count`,
      [key, member, now + this.ttl, now],
    );
    return Number(result.rows[0].count);
  }

  async claim(key: string): Promise<boolean> {
    const now = Date.now();
    const result = await this.query(
      "claim",
      `INSERT INTO ${this.schema}.claims AS c (key, expires_at) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE c.expires_at < $3
       RETURNING key`,
      [key, now + this.ttl, now],
    );
    return result.rowCount === 1;
  }

  async release(key: string): Promise<void> {
    await this.query("release", `DELETE FROM ${this.schema}.claims WHERE key = $1`, [key]);
  }

  async reserve(key: string, id: string, ttlMs: number): Promise<string> {
    const now = Date.now();
    // One statement: the row lock makes concurrent reservers of a key take turns, and each reads the holder it leaves.
    const result = await this.query(
      "reserve",
      `INSERT INTO ${this.schema}.reservations AS k (key, id, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (key) DO UPDATE SET
         id = CASE WHEN k.expires_at <= $4 THEN EXCLUDED.id ELSE k.id END,
         expires_at = CASE WHEN k.expires_at <= $4 THEN EXCLUDED.expires_at ELSE k.expires_at END
       RETURNING id`,
      [key, id, now + Math.ceil(ttlMs), now],
    );
    return result.rows[0].id as string;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    this.waiters.clear();
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => {});
    await this.pool.end();
  }

  private async read(id: string, operation: string): Promise<ResultRecord | undefined> {
    const result = await this.query(
      operation,
      `SELECT task, state, value, error, retries, updated_at, workflow, node, info FROM ${this.schema}.results WHERE id = $1 AND expires_at >= $2`,
      [id, Date.now()],
    );
    if (result.rows.length === 0) return undefined;
    const row = result.rows[0] as {
      task: string;
      state: TaskState;
      value: Buffer | null;
      error: RemoteErrorInfo | null;
      retries: number;
      updated_at: string;
      workflow: string | null;
      node: number | null;
      info: Buffer | null;
    };
    const record: { -readonly [K in keyof ResultRecord]: ResultRecord[K] } = {
      id,
      task: row.task,
      state: row.state,
      retries: row.retries,
      updatedAt: Number(row.updated_at),
    };
    if (row.workflow !== null) {
      record.workflow = row.workflow;
      record.node = row.node ?? 0;
    }
    if (row.value !== null) record.value = new Uint8Array(row.value);
    if (row.error !== null) record.error = row.error;
    if (row.info !== null) record.info = new Uint8Array(row.info);
    return record;
  }

  /**
   * Run one statement on the store's pool, after its schema is made (for
   * what keeps state beside the results in the same schema: global
   * rate-limit buckets). `schema` names the schema to write it for.
   *
   * @example
   * const { rows } = await store.sql("count", `SELECT count(*) FROM ${store.schemaName}.results`, []);
   */
  sql(operation: string, text: string, params: unknown[]): Promise<pg.QueryResult> {
    return this.query(operation, text, params);
  }

  /** The schema holding the store's tables. */
  get schemaName(): string {
    return this.schema;
  }

  /**
   * Hear the notifications sent on this store's channel for `name`
   * (`pg_notify(store.channelFor(name), payload)`). Resolves once listening;
   * the returned function stops listening.
   *
   * @example
   * const stop = await store.listen("rate_limit", (payload) => console.log(payload));
   */
  async listen(name: string, listener: (payload: string) => void): Promise<() => void> {
    const channel = this.channelFor(name);
    let listeners = this.channelListeners.get(channel);
    if (listeners === undefined) {
      this.channelListeners.set(channel, (listeners = new Set()));
      await this.listening();
      await this.listener?.query(`LISTEN "${channel}"`);
    }
    const subscription = (payload: string) => listener(payload);
    listeners.add(subscription);
    return () => {
      listeners.delete(subscription);
    };
  }

  /** The notification channel `listen(name)` hears. */
  channelFor(name: string): string {
    return `${this.channel}_${name}`;
  }

  /** The connection that LISTENs for completions, opened on first wait and reopened (catching up every waiter) if it breaks. */
  private listening(): Promise<void> {
    if (this.listener !== undefined) return Promise.resolve();
    const client = new (postgres().Client)({ connectionString: this.connectionString });
    this.listener = client;
    client.on("notification", (message) => {
      const listeners = this.channelListeners.get(message.channel);
      if (listeners !== undefined) {
        for (const listener of listeners) listener(message.payload ?? "");
        return;
      }
      const id = message.payload;
      if (id === undefined || !this.waiters.has(id)) return;
      this.get(id).then(
        (record) => {
          if (record !== undefined && READY_STATES.has(record.state)) this.waiters.wake(id, record);
        },
        () => {},
      );
    });
    client.on("error", (error) => {
      if (this.listener !== client || this.closed) return;
      this.listener = undefined;
      this.log(`postgres results: the notification connection broke (${error.message}); reconnecting`);
      client.end().catch(() => {});
      setTimeout(() => this.catchUp(), 500).unref();
    });
    return client.connect().then(
      async () => {
        await client.query(`LISTEN "${this.channel}"`);
        for (const channel of this.channelListeners.keys()) await client.query(`LISTEN "${channel}"`);
      },
      (error: unknown) => {
        if (this.listener === client) this.listener = undefined;
        throw new PostgresConnectionLostError({
          operation: "waitFinal",
          reason: error instanceof Error ? error.message : String(error),
        });
      },
    );
  }

  /** After a broken notification connection: listen again and wake the waiters whose task finished meanwhile. */
  private async catchUp(): Promise<void> {
    if (this.closed) return;
    try {
      await this.listening();
      for (const id of [...this.waiters.ids()]) {
        const record = await this.get(id);
        if (record !== undefined && READY_STATES.has(record.state)) this.waiters.wake(id, record);
      }
    } catch (error) {
      this.log(
        `postgres results: reconnecting the notification connection failed: ${error instanceof Error ? error.message : String(error)}`,
      );
      setTimeout(() => this.catchUp(), 1_000).unref();
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const table of ["results", "graphs", "joins", "claims", "reservations"]) {
      this.query("sweep", `DELETE FROM ${this.schema}.${table} WHERE expires_at < $1`, [now]).catch(() => {});
    }
  }

  /** Create the schema and tables once (under an advisory lock, as many processes may start at once). */
  private async prepare(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`celerity.results.${this.schema}`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.schema}.results (
        id text PRIMARY KEY, task text NOT NULL, state text NOT NULL, value bytea, error jsonb,
        retries integer NOT NULL DEFAULT 0, updated_at bigint NOT NULL, workflow text, node integer, expires_at bigint NOT NULL)`);
      // Added after the table's first release: a schema made before it gains the column here.
      await client.query(`ALTER TABLE ${this.schema}.results ADD COLUMN IF NOT EXISTS info bytea`);
      await client.query(`CREATE INDEX IF NOT EXISTS results_expires_at ON ${this.schema}.results (expires_at)`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.schema}.graphs (id text PRIMARY KEY, graph bytea NOT NULL, expires_at bigint NOT NULL)`,
      );
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.schema}.joins (key text PRIMARY KEY, members integer[] NOT NULL, expires_at bigint NOT NULL)`,
      );
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.schema}.claims (key text PRIMARY KEY, expires_at bigint NOT NULL)`,
      );
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.schema}.reservations (key text PRIMARY KEY, id text NOT NULL, expires_at bigint NOT NULL)`,
      );
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  private async query(operation: string, sql: string, params: unknown[]): Promise<pg.QueryResult> {
    try {
      await this.ready;
      return await this.pool.query(sql, params);
    } catch (error) {
      throw isConnectionLoss(error)
        ? new PostgresConnectionLostError({ operation, reason: error instanceof Error ? error.message : String(error) })
        : error;
    }
  }
}

/** Errors from the server itself (a SQLSTATE other than class 08) are not connection losses. */
const isConnectionLoss = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code.startsWith("08") || code === "57P01";
  return true;
};
