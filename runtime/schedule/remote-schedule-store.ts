import type { NodeClient } from "../../broker/node/node-client.ts";
import { envelopeToWire } from "../../broker/node/protocol.ts";
import type { ScheduleEntry } from "./schedule-definition.ts";
import { LeaseLostError } from "./schedule-errors.ts";
import type { FireResult, ScheduledRun, ScheduleStore } from "./schedule-store.ts";
import type { Lease, RunOutcome, StoredSchedule } from "./schedule-table.ts";

/**
 * The schedule store of an app connected to a broker node: every call is a
 * request (ops `beat.*`, served by serveSchedules), so every beat and app on
 * the node shares one set of schedules and one lease.
 */
export class RemoteScheduleStore implements ScheduleStore {
  constructor(private readonly client: NodeClient) {}

  async put(entry: ScheduleEntry): Promise<StoredSchedule> {
    return (await this.request("put", [entry])) as StoredSchedule;
  }

  async remove(name: string): Promise<boolean> {
    return (await this.request("remove", [name])) as boolean;
  }

  async list(): Promise<StoredSchedule[]> {
    return ((await this.request("list", [])) as StoredSchedule[]).map(withLastRun);
  }

  async acquire(holder: string, ttlMs: number): Promise<Lease> {
    const [leader, token, expiresAt] = (await this.request("acquire", [holder, ttlMs])) as [string, number, number];
    return { holder: leader, token, expiresAt };
  }

  async release(holder: string, token: number): Promise<void> {
    await this.request("release", [holder, token]);
  }

  async fire(holder: string, token: number, runs: readonly ScheduledRun[]): Promise<FireResult[]> {
    const wire = runs.map((run) => [run.schedule, run.instant, run.envelope === undefined ? null : envelopeToWire(run.envelope)]);
    const answer = (await this.request("fire", [holder, token, wire])) as ["ok", [RunOutcome, string | null][]] | ["fenced", number];
    if (answer[0] === "fenced") throw new LeaseLostError({ holder, token, current: answer[1] });
    return answer[1].map(([outcome, error]) => (error === null ? { outcome } : { outcome, error }));
  }

  async close(): Promise<void> {}

  private request(op: string, args: readonly unknown[]): Promise<unknown> {
    return this.client.request(`beat.${op}`, args).catch((error: unknown) => {
      if (error instanceof Error && /unknown op 'beat\./.test(error.message)) {
        throw new Error(`the node at ${this.client.url} does not keep schedules (start it with 'celerity broker', or call serveSchedules(node))`);
      }
      throw error;
    });
  }
}

// msgpack carries no undefined at the top of a map value: a schedule never run arrives without its lastRun.
const withLastRun = (schedule: StoredSchedule): StoredSchedule => (schedule.lastRun === undefined ? { ...schedule, lastRun: undefined } : schedule);
