// The schedule store of an app connected to a broker node: every call a request to the
// node (ops `beat.*`), so every beat and app on it shares one set of schedules and one lease.
import type { NodeClient } from "../../../broker/node/client/node-client.ts";
import type { AnyOperation, AnswerOf, SentOf } from "../../../broker/node/operations.ts";
import { envelopeToWire } from "../../../broker/node/protocol.ts";
import type { ScheduleEntry } from "../schedule-definition.ts";
import { scheduleOperations as ops, type WireRun } from "../schedule-operations.ts";
import type { FireResult, ScheduledRun, ScheduleStore } from "../schedule-store.ts";
import type { Lease, StoredSchedule, TableChanges } from "../schedule-table.ts";

/**
 * The schedule store of an app connected to a broker node: every call is a
 * request (ops `beat.*`, served by serveSchedules), so every beat and app on
 * the node shares one set of schedules and one lease. A fenced `fire`
 * rejects with the node's LeaseLostError.
 */
export class RemoteScheduleStore implements ScheduleStore {
  constructor(private readonly client: NodeClient) {}

  put(entry: ScheduleEntry): Promise<StoredSchedule> {
    return this.call(ops.put, [entry]);
  }

  remove(name: string): Promise<boolean> {
    return this.call(ops.remove, [name]);
  }

  async list(): Promise<StoredSchedule[]> {
    return (await this.call(ops.list, [])).map(withLastRun);
  }

  async changes(epoch: string | undefined, since: number): Promise<TableChanges> {
    const changes = await this.call(ops.changes, [epoch ?? null, since]);
    return { ...changes, schedules: changes.schedules.map(withLastRun) };
  }

  async acquire(holder: string, ttlMs: number): Promise<Lease> {
    const [leader, token, expiresAt] = await this.call(ops.acquire, [holder, ttlMs]);
    return { holder: leader, token, expiresAt };
  }

  async release(holder: string, token: number): Promise<void> {
    await this.call(ops.release, [holder, token]);
  }

  async fire(holder: string, token: number, runs: readonly ScheduledRun[]): Promise<FireResult[]> {
    const wire = runs.map(
      (run): WireRun => [run.schedule, run.instant, run.envelope === undefined ? null : envelopeToWire(run.envelope)],
    );
    const answer = await this.call(ops.fire, [holder, token, wire]);
    return answer.map(([outcome, error]) => (error === null ? { outcome } : { outcome, error }));
  }

  async close(): Promise<void> {}

  private call<O extends AnyOperation>(op: O, args: SentOf<O>): Promise<AnswerOf<O>> {
    return this.client.call(op, args).catch((error: unknown) => {
      if (error instanceof Error && /unknown op 'beat\./.test(error.message)) {
        throw new Error(
          `the node at ${this.client.url} does not keep schedules (start it with 'celerity broker', or call serveSchedules(node))`,
        );
      }
      throw error;
    });
  }
}

// msgpack carries no undefined at the top of a map value: a schedule never run arrives without its lastRun.
const withLastRun = (schedule: StoredSchedule): StoredSchedule =>
  schedule.lastRun === undefined ? { ...schedule, lastRun: undefined } : schedule;
