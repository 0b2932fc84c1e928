// The beat: leads through a lease held in the broker, finds each schedule's due runs,
// applies the catch-up policy, and sends each run once, fenced by its lease token.
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import type { Codec } from "../../broker/codec.ts";
import type { Envelope } from "../../broker/envelope.ts";
import { toEnvelope } from "../task-message.ts";
import { systemClock, type BeatClock } from "./beat-clock.ts";
import type { ScheduleEntry } from "./schedule-definition.ts";
import { LeaseLostError } from "./schedule-errors.ts";
import { dueRuns, nextInstant } from "./schedule-instants.ts";
import type { ResentRun, ScheduledRun, ScheduleStore } from "./schedule-store.ts";
import type { RunOutcome, StoredSchedule } from "./schedule-table.ts";
import { runId } from "./run-id.ts";
import { DueQueue } from "./due-queue.ts";
import type { SealRun } from "./sealed-runs.ts";

/**
 * How a beat runs. Defaults suit a production beat; tests shorten the lease
 * and pass a ManualClock.
 *
 * @example
 * const beat = app.beat({ id: "beat-eu-1", leaseMs: 5_000, graceMs: 60_000, logRuns: true });
 */
export interface BeatOptions {
  /** This beat's name in the lease and the log. Default `beat@<host>:<pid>:<random>`. */
  readonly id?: string;
  /** How long a lease lasts unless renewed: after a leader dies, another takes over within this long. Default 10 s. */
  readonly leaseMs?: number;
  /** A run found due more than this long after its instant counts as missed (the schedule's catchUp decides). Default 30 s. */
  readonly graceMs?: number;
  /** Look at the schedules (and renew the lease) at least this often. Default: a third of the lease, at most 5 s. */
  readonly maxIntervalMs?: number;
  /** Runs recorded and sent per request to the store. Default 500. */
  readonly batchSize?: number;
  readonly clock?: BeatClock;
  /** Log every run sent, with its task id. Default false. */
  readonly logRuns?: boolean;
  /** Where leadership changes, skipped runs and refusals are reported. Default: the app's log. */
  readonly log?: (message: string) => void;
}

/**
 * What one tick did.
 *
 * @example
 * const report = await beat.tick();
 * if (report.leader) for (const run of report.sent) console.log(run.schedule, new Date(run.instant), run.id);
 */
export interface TickReport {
  readonly leader: boolean;
  /** Runs sent in this tick (recorded and confirmed by the broker). */
  readonly sent: readonly { readonly schedule: string; readonly instant: number; readonly id: string }[];
  /** Runs recorded earlier whose send was never confirmed (their sender died), sent again in this tick under the same task id. */
  readonly resent: readonly { readonly schedule: string; readonly instant: number; readonly id: string }[];
  /** Missed runs passed over by their schedule's catch-up policy. */
  readonly skipped: number;
  /** When the next run is due (epoch ms), if any schedule has one. */
  readonly nextDue: number | undefined;
}

/** What a beat needs from its app. */
export interface BeatContext {
  readonly store: ScheduleStore;
  readonly codec: Codec;
  /** The schedules declared with `app.schedule`, put into the store when the beat starts. */
  readonly declared: () => readonly ScheduleEntry[];
  readonly log: (message: string) => void;
  /** Signs (and encrypts) each run's message for an app in signed mode. */
  readonly seal?: SealRun;
}

const DEFAULT_LEASE_MS = 10_000;

/**
 * The process that sends periodic tasks: it leads through a lease held in the
 * broker (one leader at a time, however many beats run), finds each
 * schedule's due runs from its last run kept in the broker, applies the
 * catch-up policy to runs it missed, and sends each run as a task whose id is
 * derived from the schedule's name and the run's instant. Sending a run and
 * recording it as the schedule's last run are one step in the broker, taken
 * only while this beat's fencing token is current: a beat paused past its
 * lease, or a new leader after a crash, sends every run once. A store apart
 * from the broker (PostgreSQL) records runs as unconfirmed before sending
 * them instead: a new leader first sends again what was never confirmed,
 * and workers claim each such run once (ScheduleStore.resendUnconfirmed).
 *
 * @example
 * const beat = app.beat();
 * await beat.start();
 * // ...
 * await beat.stop();
 */
export class Beat {
  readonly id: string;
  private readonly leaseMs: number;
  private readonly graceMs: number;
  private readonly maxIntervalMs: number;
  private readonly batchSize: number;
  private readonly clock: BeatClock;
  private readonly log: (message: string) => void;
  private readonly logRuns: boolean;
  private token: number | undefined;
  /** Whether this beat has sent again the runs its store held unconfirmed since it took the lease (or since a failed tick). */
  private unconfirmedChecked = false;
  private declaredPut = false;
  /** The schedules as of the last changes read, and where those changes ended. */
  private readonly known = new Map<string, StoredSchedule>();
  private cursor: { readonly epoch: string; readonly version: number } | undefined;
  private refreshedAt = -Infinity;
  private renewedAt = -Infinity;
  private loop: Promise<void> | undefined;
  private stopping: AbortController | undefined;
  /** Each schedule's next instant, with the definition and last run it was computed from. */
  private readonly nextOf = new Map<string, { readonly from: string; readonly next: number | undefined }>();
  /** The schedules by next instant: a tick looks only at those due. */
  private readonly queue = new DueQueue();

  constructor(
    private readonly context: BeatContext,
    options: BeatOptions = {},
  ) {
    this.id = options.id ?? `beat@${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.leaseMs = positive("leaseMs", options.leaseMs ?? DEFAULT_LEASE_MS);
    this.graceMs = positive("graceMs", options.graceMs ?? 30_000, true);
    this.maxIntervalMs = positive(
      "maxIntervalMs",
      options.maxIntervalMs ?? Math.min(5_000, Math.floor(this.leaseMs / 3)),
    );
    this.batchSize = positive("batchSize", options.batchSize ?? 500);
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? context.log;
    this.logRuns = options.logRuns ?? false;
  }

  /** Whether this beat held the lease at its last tick. */
  get leading(): boolean {
    return this.token !== undefined;
  }

  /**
   * Put the app's declared schedules into the store, run a first tick, then
   * keep ticking in the background until `stop`.
   */
  async start(): Promise<void> {
    if (this.loop !== undefined) return;
    await this.putDeclared();
    const stopping = (this.stopping = new AbortController());
    const first = await this.tickSafely();
    this.loop = this.run(first, stopping.signal);
  }

  /** Stop ticking and give the lease up, so another beat leads at once. */
  async stop(): Promise<void> {
    this.stopping?.abort();
    await this.loop;
    this.loop = undefined;
    const token = this.token;
    this.token = undefined;
    if (token !== undefined)
      await this.context.store
        .release(this.id, token)
        .catch((error: unknown) => this.log(`beat ${this.id}: could not release the lease: ${messageOf(error)}`));
  }

  /** The app's declared schedules go into the store once, before this beat's first tick. */
  private async putDeclared(): Promise<void> {
    if (this.declaredPut) return;
    for (const entry of this.context.declared()) await this.context.store.put(entry);
    this.declaredPut = true;
  }

  private async run(report: TickReport | undefined, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const now = this.clock.now();
      const wake =
        report?.leader === true && report.nextDue !== undefined
          ? Math.min(report.nextDue - now, this.maxIntervalMs)
          : this.maxIntervalMs;
      await this.clock.sleep(wake, signal);
      if (signal.aborted) break;
      report = await this.tickSafely();
    }
  }

  private async tickSafely(): Promise<TickReport | undefined> {
    try {
      return await this.tick();
    } catch (error) {
      this.log(`beat ${this.id}: tick failed, trying again: ${messageOf(error)}`);
      return undefined;
    }
  }

  /**
   * One step: take or renew the lease; as leader, send every run due now (or
   * record it as passed, as its catch-up policy says). Exposed for tests on a
   * virtual clock; `start` calls it on its own.
   */
  async tick(): Promise<TickReport> {
    try {
      return await this.step();
    } catch (error) {
      // A fire whose answer was lost may or may not have been recorded: read the whole table again.
      this.cursor = undefined;
      this.unconfirmedChecked = false;
      throw error;
    }
  }

  private async step(): Promise<TickReport> {
    const { store } = this.context;
    await this.putDeclared();
    // The lease is renewed at a third of its length, not at every tick: the fire's fencing is what keeps a run to one send.
    const started = this.clock.now();
    if (this.token === undefined || started - this.renewedAt >= this.leaseMs / 3) {
      const lease = await store.acquire(this.id, this.leaseMs);
      if (lease.holder !== this.id) {
        if (this.token !== undefined)
          this.log(`beat ${this.id}: no longer leads; ${lease.holder} leads with token ${lease.token}`);
        this.token = undefined;
        return { leader: false, sent: [], resent: [], skipped: 0, nextDue: undefined };
      }
      if (this.token !== lease.token) {
        this.log(`beat ${this.id}: leads (lease token ${lease.token})`);
        // What this beat knew may have moved on while another led: read the whole table again.
        this.cursor = undefined;
        this.unconfirmedChecked = false;
      }
      this.token = lease.token;
      this.renewedAt = started;
    }
    const token = this.token;
    let resent: readonly ResentRun[] = [];
    if (!this.unconfirmedChecked && store.resendUnconfirmed !== undefined) {
      try {
        resent = await store.resendUnconfirmed(this.id, token);
      } catch (error) {
        if (!(error instanceof LeaseLostError)) throw error;
        return this.leaseLost(error, [], [], 0);
      }
      this.unconfirmedChecked = true;
      for (const run of resent) this.logResent(run);
      // Lost with the connection again: still unconfirmed, tried again at the next tick.
      if (resent.some((run) => run.kept === true)) this.unconfirmedChecked = false;
    }
    const now = this.clock.now();
    // Changes made elsewhere (schedules added, replaced, removed) are read at least every maxIntervalMs.
    if (this.cursor === undefined || now - this.refreshedAt >= this.maxIntervalMs) {
      await this.refresh();
      this.refreshedAt = now;
    }
    const runs: ScheduledRun[] = [];
    let skipped = 0;
    for (const name of this.queue.takeDue(now)) skipped += this.collect(name, now, runs);
    const { seal } = this.context;
    if (seal !== undefined) {
      for (let i = 0; i < runs.length; i++) {
        const envelope = runs[i].envelope;
        if (envelope !== undefined) runs[i] = { ...runs[i], envelope: await seal(envelope) };
      }
    }
    const sent: { schedule: string; instant: number; id: string }[] = [];
    for (let i = 0; i < runs.length; i += this.batchSize) {
      const batch = runs.slice(i, i + this.batchSize);
      let results;
      try {
        results = await store.fire(this.id, token, batch);
      } catch (error) {
        if (!(error instanceof LeaseLostError)) throw error;
        return this.leaseLost(error, sent, resent, skipped);
      }
      for (let j = 0; j < batch.length; j++) {
        const run = batch[j];
        const result = results[j];
        this.recorded(run, result.outcome);
        if (result.kept === true) {
          // Its outcome is unknown: it stays unconfirmed in the store, and the next tick sends it again.
          this.unconfirmedChecked = false;
          this.log(
            `beat ${this.id}: schedule '${run.schedule}': the send of the run at ${iso(run.instant)} may not have reached the broker (${result.error}); it is kept and sent again at the next tick (a worker runs one copy)`,
          );
        } else if (result.error !== undefined)
          this.log(
            `beat ${this.id}: schedule '${run.schedule}': the broker refused the run at ${iso(run.instant)} (it is not sent again): ${result.error}`,
          );
        else if (result.outcome === "sent") {
          sent.push({ schedule: run.schedule, instant: run.instant, id: run.envelope!.id });
          if (this.logRuns)
            this.log(`beat ${this.id}: sent '${run.schedule}' run at ${iso(run.instant)} as task ${run.envelope!.id}`);
        }
      }
    }
    return {
      leader: true,
      sent,
      resent: resent.filter((run) => run.error === undefined),
      skipped,
      nextDue: this.queue.peek(),
    };
  }

  /** The lease was taken over while this beat sent: it sends nothing more and reads everything again once it leads. */
  private leaseLost(
    error: LeaseLostError,
    sent: TickReport["sent"],
    resent: readonly ResentRun[],
    skipped: number,
  ): TickReport {
    this.log(`beat ${this.id}: ${error.message}; sending nothing more`);
    this.token = undefined;
    this.cursor = undefined;
    return {
      leader: false,
      sent,
      resent: resent.filter((run) => run.error === undefined),
      skipped,
      nextDue: undefined,
    };
  }

  private logResent(run: ResentRun): void {
    if (run.kept === true)
      this.log(
        `beat ${this.id}: schedule '${run.schedule}': the unconfirmed run at ${iso(run.instant)} may again not have reached the broker (${run.error}); it is kept and sent again at the next tick`,
      );
    else if (run.error !== undefined)
      this.log(
        `beat ${this.id}: schedule '${run.schedule}': the broker refused the unconfirmed run at ${iso(run.instant)} (it is not sent again): ${run.error}`,
      );
    else
      this.log(
        `beat ${this.id}: sent '${run.schedule}' run at ${iso(run.instant)} again as task ${run.id}: its send was never confirmed (a worker runs one copy)`,
      );
  }

  /** Bring the schedules and their next instants up to date with the changes in the store since the last look. */
  private async refresh(): Promise<void> {
    const changes = await this.context.store.changes(this.cursor?.epoch, this.cursor?.version ?? 0);
    if (changes.full) {
      this.known.clear();
      this.queue.clear();
    }
    for (const name of changes.removed) {
      this.known.delete(name);
      this.nextOf.delete(name);
      this.queue.set(name, undefined);
    }
    for (const schedule of changes.schedules) {
      this.known.set(schedule.entry.name, schedule);
      this.queue.set(schedule.entry.name, this.nextAfterLastRun(schedule));
    }
    if (changes.full) for (const name of this.nextOf.keys()) if (!this.known.has(name)) this.nextOf.delete(name);
    this.cursor = { epoch: changes.epoch, version: changes.version };
  }

  /** A schedule's next instant after its last run (or after it was added), computed once per last run and definition. */
  private nextAfterLastRun(schedule: StoredSchedule): number | undefined {
    const since = schedule.lastRun ?? schedule.addedAt;
    const from = `${schedule.revision}:${since}`;
    const cached = this.nextOf.get(schedule.entry.name);
    if (cached !== undefined && cached.from === from) return cached.next;
    const next = nextInstant(schedule.entry, since);
    this.nextOf.set(schedule.entry.name, { from, next });
    return next;
  }

  /** Keep what this beat knows in step with what a fire recorded; anything unexpected is read back at the next tick. */
  private recorded(run: ScheduledRun, outcome: RunOutcome): void {
    const schedule = this.known.get(run.schedule);
    if ((outcome === "sent" || outcome === "passed") && schedule !== undefined) {
      if (schedule.lastRun === undefined || run.instant > schedule.lastRun)
        this.known.set(run.schedule, { ...schedule, lastRun: run.instant });
    } else {
      this.refreshedAt = -Infinity;
    }
  }

  /** Add the due runs of schedule `name` to `runs`; returns how many missed runs it passes over. */
  private collect(name: string, now: number, runs: ScheduledRun[]): number {
    const schedule = this.known.get(name);
    if (schedule === undefined) return 0;
    const { entry } = schedule;
    const due = dueRuns(entry, schedule.lastRun ?? schedule.addedAt, now, this.graceMs);
    if (due.last === undefined) {
      this.queue.set(name, this.nextAfterLastRun(schedule));
      return 0;
    }
    if (due.skipped > 0) {
      this.log(
        `beat ${this.id}: schedule '${name}': ${due.estimated ? "about " : ""}${due.skipped} missed run${due.skipped === 1 ? "" : "s"} from ${iso(due.skippedFrom!)} not sent (catchUp: ${entry.catchUp})`,
      );
    }
    for (const instant of due.send)
      runs.push({ schedule: name, instant, send: true, envelope: this.envelopeOf(entry, instant, now) });
    if (due.send.length === 0 || due.send[due.send.length - 1] !== due.last)
      runs.push({ schedule: name, instant: due.last, send: false, envelope: undefined });
    // As the store will have it once these runs are fired (a refused fire makes the next tick read the whole table again).
    const next = nextInstant(entry, due.last);
    this.nextOf.set(name, { from: `${schedule.revision}:${due.last}`, next });
    this.queue.set(name, next);
    return due.skipped;
  }

  private envelopeOf(entry: ScheduleEntry, instant: number, now: number): Envelope {
    const options =
      entry.jitterMs > 0
        ? { ...entry.options, eta: instant + jitterOf(entry.name, instant, entry.jitterMs) }
        : entry.options;
    return toEnvelope(
      {
        id: runId(entry.name, instant),
        task: entry.task,
        args: entry.args,
        options,
        retries: 0,
        // A store that resends unconfirmed runs may send one twice: workers then claim it before running it.
        ...(this.context.store.resendUnconfirmed !== undefined ? { claimOnce: true as const } : {}),
        ...(entry.target !== undefined ? { target: entry.target } : {}),
        ...(entry.expiresMs !== undefined ? { expires: instant + entry.expiresMs } : {}),
      },
      this.context.codec,
      now,
    );
  }
}

/** A run's jitter: spread over [0, maxMs], the same on every beat (a hash of the run, not a random draw). */
const jitterOf = (name: string, instant: number, maxMs: number): number => {
  let hash = 2166136261;
  const key = `${name}\u0000${instant}`;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 16777619);
  return (hash >>> 0) % (maxMs + 1);
};

const positive = (name: string, value: number, allowZero = false): number => {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0))
    throw new RangeError(`beat option ${name} must be a positive number of ms, got ${value}`);
  return value;
};

const iso = (ms: number): string => new Date(ms).toISOString();
const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
