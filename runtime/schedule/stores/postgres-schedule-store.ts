// The schedule store in PostgreSQL, with any broker: one transaction per operation under the
// beat_state row lock; fire records its runs as unconfirmed before publishing them, a new
// leader resends what was never confirmed, and workers claim each run once.
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import type pg from "pg";
import { Codec } from "../../../broker/codec.ts";
import type { Envelope } from "../../../broker/envelope.ts";
import { InvalidArgumentError, outcomeUnknown } from "../../../broker/errors.ts";
import type { Transport } from "../../../broker/transport.ts";
import { PostgresSchemaNameError } from "../../results/postgres-result-store.ts";
import type { ScheduleEntry } from "../schedule-definition.ts";
import { LeaseLostError, ScheduleStoreConnectionLostError } from "../schedule-errors.ts";
import {
  settleAll,
  type FireResult,
  type ResentRun,
  type ScheduledRun,
  type ScheduleStore,
} from "../schedule-store.ts";
import type { Lease, RunOutcome, RunRequest, StoredSchedule, TableChanges } from "../schedule-table.ts";

/**
 * Settings of a PostgresScheduleStore; every field is optional.
 *
 * @example
 * const store = new PostgresScheduleStore("postgres://postgres@127.0.0.1:5432/app", broker, { schema: "ops" });
 */
export interface PostgresScheduleStoreOptions {
  /** The schema holding the tables (created if missing). Default "celerity"; the url's `?schema=` sets it too. */
  readonly schema?: string;
  /**
   * The keeper's clock, for lease expiry and when a schedule was added.
   * Default: PostgreSQL's own (clock_timestamp()), so beats need not agree on the time.
   */
  readonly now?: () => number;
  /** Most connections kept open. Default 4. */
  readonly poolSize?: number;
}

const require = createRequire(import.meta.url);
let client: typeof pg | undefined;
/** node-postgres, loaded on first use: an app that keeps no schedules in PostgreSQL does not pay for loading it. */
const postgres = (): typeof pg => (client ??= require("pg") as typeof pg);

const MANDATORY = { mandatory: true } as const;
/** How long a run's claim is kept: far longer than any resend can come after the first send. */
const CLAIM_KEPT_MS = 24 * 60 * 60 * 1000;
/** The table's clock in SQL: the time given ($n), else the server's, in epoch ms. */
const keeperNow = (param: string) =>
  `COALESCE(${param}::bigint, (extract(epoch from clock_timestamp()) * 1000)::bigint)`;

/**
 * The schedule store on PostgreSQL, for an app whose broker keeps no
 * schedules (RabbitMQ) or that wants them in its database: with
 * `createApp({ schedules: "postgres://…" })` or `celerity beat --schedules
 * postgres://…`. Tables in its schema: `beat_schedules` (one row per
 * schedule: the entry as msgpack, when it was added, its revision, its last
 * run and the version of its last change), `beat_removed` (removed
 * schedules, for readers catching up), `beat_state` (one row: the table's
 * epoch and version, the lease and its fencing token), `beat_unconfirmed`
 * (runs recorded whose send the broker has not confirmed yet, with their
 * messages) and `beat_claims` (the task ids of runs a worker has claimed,
 * kept a day).
 *
 * Every operation is one transaction that locks the `beat_state` row first,
 * so changes are serialized. The store and the broker are two systems, so a
 * run cannot be recorded and published in one step: `fire` checks the lease
 * under that lock, records each run as the schedule's last run and, for a run
 * to send, its message in `beat_unconfirmed`, commits, then publishes and
 * forgets the runs the broker confirmed. A beat killed before the commit has
 * recorded and sent nothing; killed after it, its runs stay unconfirmed and
 * the next leader sends them again (`resendUnconfirmed`), under the same
 * task id and marked `claimOnce`, so a run sent twice is run once: the
 * worker claims its id in `beat_claims` first (`claimRun`) and acks a copy
 * whose id is claimed without running it (docs/periodic-tasks.md).
 *
 * @example
 * const app = createApp({ broker: "amqp://guest:guest@127.0.0.1:5672", schedules: "postgres://postgres@127.0.0.1:5432/app" });
 */
export class PostgresScheduleStore implements ScheduleStore {
  private readonly pool: pg.Pool;
  private readonly schema: string;
  private readonly codec = new Codec();
  private readonly ready: Promise<void>;
  private readonly now: (() => number) | undefined;

  constructor(
    url: string,
    private readonly broker: Transport,
    options: PostgresScheduleStoreOptions = {},
  ) {
    const parsed = new URL(url);
    const schema = options.schema ?? parsed.searchParams.get("schema") ?? "celerity";
    parsed.searchParams.delete("schema");
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(schema)) throw new PostgresSchemaNameError({ schema });
    this.schema = schema;
    this.now = options.now;
    this.pool = new (postgres().Pool)({ connectionString: parsed.toString(), max: options.poolSize ?? 4 });
    this.pool.on("error", () => {});
    this.ready = this.prepare();
    this.ready.catch(() => {});
  }

  async put(entry: ScheduleEntry): Promise<StoredSchedule> {
    const bytes = Buffer.from(this.codec.encode(entry, "schedule"));
    return this.transaction("put", async (db, version) => {
      const { rows } = await db.query(
        `INSERT INTO ${this.schema}.beat_schedules AS s (name, entry, added_at, revision, version)
         VALUES ($1, $2, ${keeperNow("$4")}, $3, $3)
         ON CONFLICT (name) DO UPDATE SET entry = EXCLUDED.entry, revision = EXCLUDED.revision, version = EXCLUDED.version
         RETURNING entry, added_at, revision, last_run`,
        [entry.name, bytes, await version(), this.keeperNow()],
      );
      await db.query(`DELETE FROM ${this.schema}.beat_removed WHERE name = $1`, [entry.name]);
      return this.stored(rows[0]);
    });
  }

  async remove(name: string): Promise<boolean> {
    return this.transaction("remove", async (db, version) => {
      const { rowCount } = await db.query(`DELETE FROM ${this.schema}.beat_schedules WHERE name = $1`, [name]);
      if (rowCount !== 1) return false;
      await db.query(
        `INSERT INTO ${this.schema}.beat_removed (name, version) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version`,
        [name, await version()],
      );
      await this.trimRemoved(db);
      return true;
    });
  }

  async list(): Promise<StoredSchedule[]> {
    return [...(await this.changes(undefined, 0)).schedules];
  }

  async changes(epoch: string | undefined, since: number): Promise<TableChanges> {
    return this.transaction("changes", async (db, _version, state) => {
      const full = epoch !== state.epoch || since < state.forgotten || since > state.version;
      const schedules = await db.query(
        `SELECT entry, added_at, revision, last_run FROM ${this.schema}.beat_schedules ${full ? "" : "WHERE version > $1"}`,
        full ? [] : [since],
      );
      const removed = full
        ? { rows: [] }
        : await db.query(`SELECT name FROM ${this.schema}.beat_removed WHERE version > $1`, [since]);
      return {
        epoch: state.epoch,
        version: state.version,
        full,
        schedules: schedules.rows.map((row) => this.stored(row)),
        removed: removed.rows.map((row: { name: string }) => row.name),
      };
    });
  }

  async acquire(holder: string, ttlMs: number): Promise<Lease> {
    if (!(ttlMs > 0))
      throw new InvalidArgumentError({ argument: "lease ms", reason: `the beat lease must be positive, got ${ttlMs}` });
    return this.transaction("acquire", async (db, _version, state) => {
      const now = state.now;
      if (state.holder !== null && state.expiresAt > now && state.holder !== holder)
        return { holder: state.holder, token: state.token, expiresAt: state.expiresAt };
      const current = state.holder === holder && state.expiresAt > now;
      const token = current ? state.token : state.lastToken + 1;
      const lease = { holder, token, expiresAt: now + Math.ceil(ttlMs) };
      await db.query(
        `UPDATE ${this.schema}.beat_state SET holder = $1, token = $2, expires_at = $3, last_token = GREATEST(last_token, $2) WHERE id = 1`,
        [holder, token, lease.expiresAt],
      );
      return lease;
    });
  }

  async release(holder: string, token: number): Promise<void> {
    await this.transaction("release", (db) =>
      db.query(
        `UPDATE ${this.schema}.beat_state SET holder = NULL, token = 0, expires_at = 0 WHERE id = 1 AND holder = $1 AND token = $2`,
        [holder, token],
      ),
    );
  }

  async fire(holder: string, token: number, runs: readonly ScheduledRun[]): Promise<FireResult[]> {
    const { outcomes, toSend } = await this.transaction("fire", async (db, version, state) => {
      if (state.holder !== holder || state.token !== token || state.expiresAt <= state.now)
        throw new LeaseLostError({ holder, token, current: state.lastToken });
      const names = [...new Set(runs.map((run) => run.schedule))];
      const { rows } = await db.query(
        `SELECT name, last_run FROM ${this.schema}.beat_schedules WHERE name = ANY($1::text[]) FOR UPDATE`,
        [names],
      );
      const lastRuns = new Map<string, number | null>(
        rows.map((row: { name: string; last_run: string | null }) => [
          row.name,
          row.last_run === null ? null : Number(row.last_run),
        ]),
      );
      const outcomes: RunOutcome[] = [];
      const toSend: ScheduledRun[] = [];
      for (const run of runs) {
        if (!lastRuns.has(run.schedule)) {
          outcomes.push("removed");
          continue;
        }
        const last = lastRuns.get(run.schedule);
        if (last !== null && last !== undefined && run.instant <= last) {
          outcomes.push("stale");
          continue;
        }
        lastRuns.set(run.schedule, run.instant);
        await db.query(`UPDATE ${this.schema}.beat_schedules SET last_run = $2, version = $3 WHERE name = $1`, [
          run.schedule,
          run.instant,
          await version(),
        ]);
        if (run.send) toSend.push(run);
        outcomes.push(run.send ? "sent" : "passed");
      }
      if (toSend.length > 0) {
        await this.recordUnconfirmed(db, toSend);
        await this.forgetOldClaims(db, state.now);
      }
      return { outcomes, toSend };
    });
    // Recorded as unconfirmed before publishing: a beat killed from here on leaves its runs for the next leader to resend.
    const published = new Map<RunRequest, Promise<void>>();
    const inDoubt = new Set<string>();
    for (const run of toSend) published.set(run, this.publishKeepingDoubt(run.envelope as Envelope, inDoubt));
    const results = await settleAll(runs, outcomes, published);
    await this.confirm(toSend.map((run) => (run.envelope as Envelope).id).filter((id) => !inDoubt.has(id)));
    if (inDoubt.size === 0) return results;
    return results.map((result, i) => {
      const id = (runs[i] as ScheduledRun).envelope?.id;
      return id !== undefined && inDoubt.has(id) ? { ...result, kept: true } : result;
    });
  }

  /**
   * Publish a recorded run; one whose outcome is unknown (the connection was
   * lost) is noted in `inDoubt` and stays unconfirmed, to be sent again: a
   * copy that did arrive is claimed once by the workers.
   */
  private publishKeepingDoubt(envelope: Envelope, inDoubt: Set<string>): Promise<void> {
    return this.broker.publish(envelope, MANDATORY).catch((error: unknown) => {
      if (outcomeUnknown(error)) inDoubt.add(envelope.id);
      throw error;
    });
  }

  async resendUnconfirmed(holder: string, token: number): Promise<ResentRun[]> {
    const unconfirmed = await this.transaction("resend", async (db, _version, state) => {
      if (state.holder !== holder || state.token !== token || state.expiresAt <= state.now)
        throw new LeaseLostError({ holder, token, current: state.lastToken });
      const { rows } = await db.query(
        `SELECT schedule, instant, envelope FROM ${this.schema}.beat_unconfirmed ORDER BY instant, run_id`,
      );
      return rows.map((row: { schedule: string; instant: string; envelope: Buffer }) => ({
        schedule: row.schedule,
        instant: Number(row.instant),
        envelope: this.codec.decode(row.envelope) as Envelope,
      }));
    });
    const resent = await Promise.all(
      unconfirmed.map(({ schedule, instant, envelope }) =>
        this.broker.publish(envelope, MANDATORY).then(
          (): ResentRun => ({ schedule, instant, id: envelope.id }),
          (error: unknown): ResentRun => ({
            schedule,
            instant,
            id: envelope.id,
            error: error instanceof Error ? error.message : String(error),
            ...(outcomeUnknown(error) ? { kept: true as const } : {}),
          }),
        ),
      ),
    );
    await this.confirm(resent.filter((run) => run.kept !== true).map((run) => run.id));
    return resent;
  }

  async claimRun(id: string): Promise<boolean> {
    try {
      await this.ready;
      const { rowCount } = await this.pool.query(
        `INSERT INTO ${this.schema}.beat_claims (run_id, claimed_at) VALUES ($1, ${keeperNow("$2")})
         ON CONFLICT (run_id) DO NOTHING`,
        [id, this.keeperNow()],
      );
      return rowCount === 1;
    } catch (error) {
      throw isConnectionError(error) ? lost("claim", error) : error;
    }
  }

  async close(): Promise<void> {
    await this.ready.catch(() => {});
    await this.pool.end();
  }

  /** Record runs about to be published as unconfirmed, with their messages, in the fire's transaction. */
  private async recordUnconfirmed(db: pg.PoolClient, runs: readonly ScheduledRun[]): Promise<void> {
    const envelopes = runs.map((run) => run.envelope as Envelope);
    await db.query(
      `INSERT INTO ${this.schema}.beat_unconfirmed (run_id, schedule, instant, envelope)
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[])
       ON CONFLICT (run_id) DO NOTHING`,
      [
        envelopes.map((envelope) => envelope.id),
        runs.map((run) => run.schedule),
        runs.map((run) => run.instant),
        envelopes.map((envelope) => Buffer.from(this.codec.encode(envelope, "envelope"))),
      ],
    );
  }

  /** Forget runs the broker confirmed (or refused: those are not sent again). */
  private async confirm(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    try {
      await this.pool.query(`DELETE FROM ${this.schema}.beat_unconfirmed WHERE run_id = ANY($1::text[])`, [ids]);
    } catch (error) {
      throw isConnectionError(error) ? lost("fire", error) : error;
    }
  }

  /** A run is resent within a lease or two of its instant: its claim is kept a day, then dropped. */
  private async forgetOldClaims(db: pg.PoolClient, now: number): Promise<void> {
    await db.query(`DELETE FROM ${this.schema}.beat_claims WHERE claimed_at < $1`, [now - CLAIM_KEPT_MS]);
  }

  private keeperNow(): number | null {
    return this.now === undefined ? null : this.now();
  }

  private stored(row: { entry: Buffer; added_at: string; revision: string; last_run: string | null }): StoredSchedule {
    return {
      entry: this.codec.decode(row.entry) as ScheduleEntry,
      addedAt: Number(row.added_at),
      lastRun: row.last_run === null ? undefined : Number(row.last_run),
      revision: Number(row.revision),
    };
  }

  /**
   * Run `work` in a transaction holding the `beat_state` row lock, with that
   * row as it was and `version()`, which bumps the table's version (once per
   * call) for a change; commits what `work` did, or rolls it back if it throws.
   */
  private async transaction<T>(
    operation: string,
    work: (db: pg.PoolClient, version: () => Promise<number>, state: BeatState) => Promise<T>,
  ): Promise<T> {
    let db: pg.PoolClient;
    try {
      await this.ready;
      db = await this.pool.connect();
    } catch (error) {
      throw lost(operation, error);
    }
    let broken = false;
    try {
      await db.query("BEGIN");
      const { rows } = await db.query(
        `SELECT epoch, version, forgotten, holder, token, expires_at, last_token, ${keeperNow("$1")} AS now
         FROM ${this.schema}.beat_state WHERE id = 1 FOR UPDATE`,
        [this.keeperNow()],
      );
      const row = rows[0];
      const state: BeatState = {
        epoch: row.epoch,
        version: Number(row.version),
        forgotten: Number(row.forgotten),
        holder: row.holder,
        token: Number(row.token),
        expiresAt: Number(row.expires_at),
        lastToken: Number(row.last_token),
        now: Number(row.now),
      };
      let next = state.version;
      const version = async (): Promise<number> => {
        next++;
        await db.query(`UPDATE ${this.schema}.beat_state SET version = $1 WHERE id = 1`, [next]);
        return next;
      };
      const result = await work(db, version, state);
      await db.query("COMMIT");
      return result;
    } catch (error) {
      await db.query("ROLLBACK").catch(() => {});
      if (error instanceof LeaseLostError) throw error;
      if (isConnectionError(error)) {
        broken = true;
        throw lost(operation, error);
      }
      throw error;
    } finally {
      db.release(broken);
    }
  }

  /** Keep at most max(4096, 4 × schedules) removed names: readers behind the oldest dropped read the whole table. */
  private async trimRemoved(db: pg.PoolClient): Promise<void> {
    await db.query(
      `WITH bound AS (SELECT GREATEST(4096, 4 * (SELECT count(*) FROM ${this.schema}.beat_schedules)) AS keep),
            dropped AS (
              DELETE FROM ${this.schema}.beat_removed WHERE name IN (
                SELECT name FROM ${this.schema}.beat_removed ORDER BY version DESC OFFSET (SELECT keep FROM bound))
              RETURNING version)
       UPDATE ${this.schema}.beat_state SET forgotten = GREATEST(forgotten, (SELECT max(version) FROM dropped))
       WHERE id = 1 AND EXISTS (SELECT 1 FROM dropped)`,
    );
  }

  private async prepare(): Promise<void> {
    const s = this.schema;
    const db = await this.pool.connect();
    try {
      // Two stores starting at once must not race on CREATE: one advisory lock per schema.
      await db.query("SELECT pg_advisory_lock(hashtext($1))", [`celerity.beat.${s}`]);
      await db.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await db.query(`CREATE TABLE IF NOT EXISTS ${s}.beat_schedules (
        name text PRIMARY KEY, entry bytea NOT NULL, added_at bigint NOT NULL,
        revision bigint NOT NULL, last_run bigint, version bigint NOT NULL)`);
      await db.query(`CREATE INDEX IF NOT EXISTS beat_schedules_version ON ${s}.beat_schedules (version)`);
      await db.query(`CREATE TABLE IF NOT EXISTS ${s}.beat_removed (name text PRIMARY KEY, version bigint NOT NULL)`);
      await db.query(`CREATE TABLE IF NOT EXISTS ${s}.beat_unconfirmed (
        run_id text PRIMARY KEY, schedule text NOT NULL, instant bigint NOT NULL, envelope bytea NOT NULL)`);
      await db.query(
        `CREATE TABLE IF NOT EXISTS ${s}.beat_claims (run_id text PRIMARY KEY, claimed_at bigint NOT NULL)`,
      );
      await db.query(`CREATE INDEX IF NOT EXISTS beat_claims_claimed_at ON ${s}.beat_claims (claimed_at)`);
      await db.query(`CREATE TABLE IF NOT EXISTS ${s}.beat_state (
        id integer PRIMARY KEY CHECK (id = 1), epoch text NOT NULL, version bigint NOT NULL DEFAULT 0,
        forgotten bigint NOT NULL DEFAULT 0, holder text, token bigint NOT NULL DEFAULT 0,
        expires_at bigint NOT NULL DEFAULT 0, last_token bigint NOT NULL DEFAULT 0)`);
      await db.query(`INSERT INTO ${s}.beat_state (id, epoch) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, [
        randomUUID(),
      ]);
    } finally {
      await db.query("SELECT pg_advisory_unlock(hashtext($1))", [`celerity.beat.${s}`]).catch(() => {});
      db.release();
    }
  }
}

interface BeatState {
  readonly epoch: string;
  readonly version: number;
  readonly forgotten: number;
  readonly holder: string | null;
  readonly token: number;
  readonly expiresAt: number;
  readonly lastToken: number;
  /** The keeper's time at the start of the transaction. */
  readonly now: number;
}

/** A failure of the connection (a socket error, a terminated connection) rather than an answer from PostgreSQL or a refusal of ours. */
const isConnectionError = (error: unknown): boolean => {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") return !/^[0-9A-Z]{5}$/.test(code);
  return /connection|terminated|timeout/i.test(error.message);
};

const lost = (operation: string, error: unknown) =>
  new ScheduleStoreConnectionLostError({
    store: "PostgreSQL",
    operation,
    reason: error instanceof Error ? error.message : String(error),
  });
