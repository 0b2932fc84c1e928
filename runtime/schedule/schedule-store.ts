// Where schedules, their last runs and the beat lease are kept (the ScheduleStore
// interface), and the store beside an embedded broker (MemoryScheduleStore).
import type { Envelope } from "../../broker/envelope.ts";
import type { Transport } from "../../broker/transport.ts";
import type { ScheduleEntry } from "./schedule-definition.ts";
import {
  ScheduleTable,
  type Lease,
  type RunOutcome,
  type RunRequest,
  type StoredSchedule,
  type TableChanges,
} from "./schedule-table.ts";

/**
 * Where schedules, their last runs and the beat lease are kept, shared by
 * every beat and app on one broker: `MemoryScheduleStore` beside an embedded
 * broker, `RemoteScheduleStore` on a broker node (ops `beat.*`),
 * `RedisScheduleStore` on Redis, `PostgresScheduleStore` in PostgreSQL with
 * any broker. Each method is one atomic step, `fire` checking the lease and
 * recording each run in the same step as it publishes the run's message
 * (PostgreSQL, a system apart from the broker, records first and resends
 * what was never confirmed: see `resendUnconfirmed`); every store passes
 * `scheduleStoreConformance`.
 *
 * @example
 * const app = createApp({ broker, schedules: new PostgresScheduleStore(url, broker, { schema: "ops" }) });
 */
export interface ScheduleStore {
  /** Add a schedule or replace its definition (its last run is kept). */
  put(entry: ScheduleEntry): Promise<StoredSchedule>;
  /** Remove a schedule; false if there was none by that name. */
  remove(name: string): Promise<boolean>;
  list(): Promise<StoredSchedule[]>;
  /**
   * What changed since a reader's cursor (the epoch and version of the last
   * changes it read; none at first): a beat keeps the schedules in memory and
   * asks only for this, not the whole table, at every tick.
   */
  changes(epoch: string | undefined, since: number): Promise<TableChanges>;
  /** Lead or go on leading for `ttlMs`: the lease in force afterwards (held by `holder` or by another beat). */
  acquire(holder: string, ttlMs: number): Promise<Lease>;
  /** Give the lease up if `holder` still holds it with `token`. */
  release(holder: string, token: number): Promise<void>;
  /**
   * For the holder of the lease with `token`: record each run and publish the
   * message of each run to send, in one step (or, on a store with
   * `resendUnconfirmed`, recording the run as unconfirmed first); rejects with
   * LeaseLostError, recording and sending nothing, if the lease is no longer theirs.
   */
  fire(holder: string, token: number, runs: readonly ScheduledRun[]): Promise<FireResult[]>;
  /**
   * Only on a store whose `fire` records runs apart from publishing them
   * (PostgreSQL with another broker): such a store records each run to send
   * as unconfirmed before publishing it, and forgets it once the broker
   * confirms. For the holder of the lease with `token`: publish again every
   * run still unconfirmed (its sender died between the two), under the same
   * task id. Its runs are marked `claimOnce`, so a worker runs one copy.
   */
  resendUnconfirmed?(holder: string, token: number): Promise<ResentRun[]>;
  /**
   * Only on a store with `resendUnconfirmed`: true the first time a run's
   * task id is claimed, false ever after; what a worker claims before running
   * a run marked `claimOnce`.
   */
  claimRun?(id: string): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * A run published again by `resendUnconfirmed`; `error` says why it failed:
 * refused by the broker (not sent again), or, with `kept`, lost with the
 * connection (it stays unconfirmed and is sent again at the next tick).
 */
export interface ResentRun {
  readonly schedule: string;
  readonly instant: number;
  readonly id: string;
  readonly error?: string;
  readonly kept?: true;
}

/** A run with the message to publish when it is sent. */
export interface ScheduledRun extends RunRequest {
  readonly envelope: Envelope | undefined;
}

/**
 * A run's outcome; `error` says why a message recorded as sent failed:
 * refused by the broker (not sent again), or, with `kept` (a store that
 * resends unconfirmed runs), lost with the connection: it stays unconfirmed
 * and the beat sends it again at its next tick.
 */
export interface FireResult {
  readonly outcome: RunOutcome;
  readonly error?: string;
  readonly kept?: true;
}

const MANDATORY = { mandatory: true } as const;

/**
 * The schedule store of an embedded broker: in this process, shared by every
 * app created on the same broker object (so two beats in one process elect
 * one leader, as across processes). It lives as long as the process.
 *
 * @example
 * const store = MemoryScheduleStore.of(broker);
 */
export class MemoryScheduleStore implements ScheduleStore {
  private static readonly byTransport = new WeakMap<Transport, MemoryScheduleStore>();
  readonly table = new ScheduleTable();

  constructor(
    private readonly transport: Transport,
    private readonly now: () => number = Date.now,
  ) {}

  /** The store shared by everything on `transport` (created on first use, with `now` as its clock). */
  static of(transport: Transport, now: () => number = Date.now): MemoryScheduleStore {
    let store = MemoryScheduleStore.byTransport.get(transport);
    if (store === undefined)
      MemoryScheduleStore.byTransport.set(transport, (store = new MemoryScheduleStore(transport, now)));
    return store;
  }

  async put(entry: ScheduleEntry): Promise<StoredSchedule> {
    return this.table.put(entry, this.now());
  }

  async remove(name: string): Promise<boolean> {
    return this.table.remove(name);
  }

  async list(): Promise<StoredSchedule[]> {
    return this.table.list();
  }

  async changes(epoch: string | undefined, since: number): Promise<TableChanges> {
    return this.table.changesSince(epoch, since);
  }

  async acquire(holder: string, ttlMs: number): Promise<Lease> {
    return this.table.acquire(holder, ttlMs, this.now());
  }

  async release(holder: string, token: number): Promise<void> {
    this.table.release(holder, token);
  }

  fire(holder: string, token: number, runs: readonly ScheduledRun[]): Promise<FireResult[]> {
    const published = new Map<RunRequest, Promise<void>>();
    let outcomes: RunOutcome[];
    try {
      outcomes = this.table.fire(holder, token, runs, this.now(), (run) => {
        published.set(run, this.transport.publish(run.envelope as Envelope, MANDATORY));
      });
    } catch (error) {
      return Promise.reject(error);
    }
    return settleAll(runs, outcomes, published);
  }

  async close(): Promise<void> {}
}

/** Each run's outcome once its publish (if any) is confirmed or refused. */
export const settleAll = (
  runs: readonly RunRequest[],
  outcomes: readonly RunOutcome[],
  published: Map<RunRequest, Promise<void>>,
): Promise<FireResult[]> =>
  Promise.all(
    runs.map((run, i): FireResult | Promise<FireResult> => {
      const confirm = published.get(run);
      if (confirm === undefined) return { outcome: outcomes[i] };
      return confirm.then(
        () => ({ outcome: outcomes[i] }),
        (error: unknown) => ({ outcome: outcomes[i], error: error instanceof Error ? error.message : String(error) }),
      );
    }),
  );
