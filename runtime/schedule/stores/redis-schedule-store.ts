// The schedule store of an app on the Redis transport: schedules, last runs and the beat lease in
// the transport's Redis, each operation one script (redis-schedule-scripts.ts).
import { Codec } from "../../../broker/codec.ts";
import type { Envelope } from "../../../broker/envelope.ts";
import { ExchangeNotFoundError, UnroutableError } from "../../../broker/errors.ts";
import { encodeEnvelope } from "../../../broker/redis/redis-envelope.ts";
import { connectionLoss } from "../../../broker/redis/redis-errors.ts";
import { text } from "../../../broker/redis/redis-script.ts";
import type { RedisTransport } from "../../../broker/redis/redis-transport.ts";
import { clampPriority } from "../../../broker/envelope.ts";
import { randomUUID } from "node:crypto";
import type { ScheduleEntry } from "../schedule-definition.ts";
import { LeaseLostError } from "../schedule-errors.ts";
import {
  acquireScript,
  changesScript,
  fireScript,
  putScript,
  releaseScript,
  removeScript,
} from "./redis-schedule-scripts.ts";
import type { FireResult, ScheduledRun, ScheduleStore } from "../schedule-store.ts";
import type { Lease, RunOutcome, StoredSchedule, TableChanges } from "../schedule-table.ts";

/**
 * The schedule store of an app on the Redis transport: schedules, last runs
 * and the beat lease kept in the transport's Redis under its prefix, each
 * operation one script (redis-schedule-scripts.ts). `fire` checks the
 * fencing token, records each run and enqueues its message in one script,
 * so a beat killed at any point has either recorded and sent a run or done
 * neither, and the next leader sends what is left exactly once.
 *
 * @example
 * const store = new RedisScheduleStore(await RedisTransport.connect("redis://127.0.0.1:6379/0"));
 */
export class RedisScheduleStore implements ScheduleStore {
  private readonly codec = new Codec();

  /**
   * `now`: the keeper's clock for lease expiry and when a schedule was added;
   * default the Redis server's time, so beats need not agree on the time.
   */
  constructor(
    private readonly transport: RedisTransport,
    private readonly now?: () => number,
  ) {}

  async put(entry: ScheduleEntry): Promise<StoredSchedule> {
    const reply = (await this.run("store a schedule", () =>
      putScript.run(this.transport.redis, [
        this.prefix,
        entry.name,
        Buffer.from(this.codec.encode(entry, "schedule")),
        this.keeperNow(),
      ]),
    )) as unknown[];
    return this.schedule(reply, 0);
  }

  async remove(name: string): Promise<boolean> {
    const removed = await this.run("remove a schedule", () =>
      removeScript.run(this.transport.redis, [this.prefix, name]),
    );
    return removed === 1;
  }

  async list(): Promise<StoredSchedule[]> {
    return [...(await this.changes(undefined, 0)).schedules];
  }

  async changes(epoch: string | undefined, since: number): Promise<TableChanges> {
    const reply = (await this.run("read schedule changes", () =>
      changesScript.run(this.transport.redis, [this.prefix, epoch ?? "", since, randomUUID()]),
    )) as unknown[];
    const schedules: StoredSchedule[] = [];
    let i = 3;
    for (; text(reply[i]) !== ""; i += 4) schedules.push(this.schedule(reply, i));
    const removed = reply.slice(i + 1).map(text);
    return { epoch: text(reply[0]), version: Number(reply[1]), full: Number(reply[2]) === 1, schedules, removed };
  }

  async acquire(holder: string, ttlMs: number): Promise<Lease> {
    const [leader, token, expiresAt] = (await this.run("acquire the beat lease", () =>
      acquireScript.run(this.transport.redis, [this.prefix, holder, Math.ceil(ttlMs), this.keeperNow()]),
    )) as unknown[];
    return { holder: text(leader), token: Number(token), expiresAt: Number(expiresAt) };
  }

  async release(holder: string, token: number): Promise<void> {
    await this.run("release the beat lease", () =>
      releaseScript.run(this.transport.redis, [this.prefix, holder, token]),
    );
  }

  async fire(holder: string, token: number, runs: readonly ScheduledRun[]): Promise<FireResult[]> {
    const args: (string | number | Buffer)[] = [this.prefix, holder, token, Date.now(), this.keeperNow()];
    for (const run of runs) {
      const envelope = run.envelope;
      args.push(run.schedule, run.instant);
      if (envelope === undefined || !run.send) args.push("0", "", "", 0, "", "", "", "");
      else {
        const priority = clampPriority(envelope.priority);
        args.push(
          "1",
          envelope.exchange,
          envelope.routingKey,
          priority,
          envelope.eta ?? "",
          envelope.expires ?? "",
          envelope.id,
          encodeEnvelope(priority === envelope.priority ? envelope : { ...envelope, priority }),
        );
      }
    }
    const reply = (await this.run("fire scheduled runs", () =>
      fireScript.run(this.transport.redis, args),
    )) as unknown[];
    if (text(reply[0]) === "lost") throw new LeaseLostError({ holder, token, current: Number(reply[1]) });
    return runs.map((run, i): FireResult => {
      const outcome = text(reply[1 + i * 2]) as RunOutcome;
      const refusal = text(reply[2 + i * 2]);
      return refusal === "" ? { outcome } : { outcome, error: refusalOf(refusal, run.envelope as Envelope) };
    });
  }

  /** The transport owns the connection: nothing of the store's own to close. */
  async close(): Promise<void> {}

  private keeperNow(): number | "" {
    return this.now === undefined ? "" : this.now();
  }

  private get prefix(): string {
    return this.transport.prefix;
  }

  private schedule(reply: unknown[], at: number): StoredSchedule {
    const lastRun = text(reply[at + 3]);
    return {
      entry: this.codec.decode(reply[at] as Buffer) as ScheduleEntry,
      addedAt: Number(text(reply[at + 1])),
      lastRun: lastRun === "" ? undefined : Number(lastRun),
      revision: Number(text(reply[at + 2])),
    };
  }

  private async run<T>(operation: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw connectionLoss(this.transport.url, operation, error);
    }
  }
}

/** Why the broker refused a run's message, as the transport's publish says it. */
const refusalOf = (refusal: string, envelope: Envelope): string =>
  refusal === "noexchange"
    ? new ExchangeNotFoundError({ exchange: envelope.exchange }).message
    : new UnroutableError({ exchange: envelope.exchange, routingKey: envelope.routingKey }).message;
