// `serveSchedules`: the schedule table kept on a broker node for every beat and app
// connected to it, publishing fired runs into the node's broker.
import { InvalidArgumentError } from "../../broker/errors.ts";
import type { Envelope } from "../../broker/envelope.ts";
import type { BrokerNode } from "../../broker/node/node-server.ts";
import { envelopeFromWire } from "../../broker/node/protocol.ts";
import type { ScheduleEntry } from "./schedule-definition.ts";
import type { ScheduleLog } from "./stores/schedule-log.ts";
import { scheduleOperations } from "./schedule-operations.ts";
import { settleAll } from "./schedule-store.ts";
import { ScheduleTable, type RunRequest } from "./schedule-table.ts";

/**
 * Where a node keeps its schedules, and its clock.
 *
 * @example
 * serveSchedules(node, { log: await ScheduleLog.open("./data/schedules") });
 */
export interface ScheduleServiceOptions {
  /** Keep the schedules in this durable log (a node with a data directory); default: in the node's memory. */
  readonly log?: ScheduleLog;
  /** The node's clock, for lease expiry and when a schedule was added. Default Date.now. */
  readonly now?: () => number;
}

/**
 * Keep the schedules, their last runs and the beat lease on a broker node, for
 * every beat and app connected to it (ops `beat.*`, declared in
 * schedule-operations.ts). Each op is one step on the node's single thread;
 * `beat.fire` checks the fencing token, records each run and publishes its
 * message into the node's broker in that step, and answers once the messages
 * are confirmed and the records durable (on a node with a data directory).
 *
 * The lease expires by the node's clock, so beats need not agree on the time
 * to agree on who leads.
 *
 * @example
 * const node = await BrokerNode.start({ port: 5690 });
 * serveSchedules(node);
 */
export const serveSchedules = (node: BrokerNode, options: ScheduleServiceOptions = {}): ScheduleTable => {
  const now = options.now ?? Date.now;
  const log = options.log;
  const table = log?.table ?? new ScheduleTable();
  // A change is answered once it is durable: a beat must not act on what a node restart would take back.
  const durable = <T>(value: T): T | Promise<T> => (log === undefined ? value : log.durable().then(() => value));
  node.serve(scheduleOperations, {
    put: ([entry]) => durable(table.put(checkedEntry(entry), now())),
    remove: ([name]) => durable(table.remove(name)),
    list: () => table.list(),
    changes: ([epoch, since]) => table.changesSince(epoch ?? undefined, since),
    acquire: ([holder, ttlMs]) => {
      if (!(ttlMs > 0))
        throw new InvalidArgumentError({
          argument: "lease ms",
          reason: `beat.acquire needs a positive lease, got ${ttlMs}`,
        });
      const lease = table.acquire(holder, ttlMs, now());
      return durable<[string, number, number]>([lease.holder, lease.token, lease.expiresAt]);
    },
    release: ([holder, token]) => {
      table.release(holder, token);
      return durable(null);
    },
    fire: ([holder, token, wire]) => {
      const runs = wire.map(([schedule, instant, envelope]): RunRequest & { envelope: Envelope | undefined } => ({
        schedule: String(schedule),
        instant: Number(instant),
        send: envelope !== null && envelope !== undefined,
        envelope: envelope === null || envelope === undefined ? undefined : ownedEnvelope(envelope),
      }));
      const published = new Map<RunRequest, Promise<void>>();
      // Throws LeaseLostError, which reaches the beat as itself, when `token` is not the lease in force.
      const outcomes = table.fire(holder, token, runs, now(), (run) => {
        published.set(run, node.publishDurably(run.envelope as Envelope, true));
      });
      return settleAll(runs, outcomes, published).then((results) =>
        durable(results.map((r): [typeof r.outcome, string | null] => [r.outcome, r.error ?? null])),
      );
    },
  });
  return table;
};

/** The body arrived as a view into a socket chunk: keep a copy of its own. */
const ownedEnvelope = (wire: unknown): Envelope => {
  const envelope = envelopeFromWire(wire);
  return { ...envelope, body: envelope.body.slice() };
};

const checkedEntry = (entry: ScheduleEntry): ScheduleEntry => {
  if (typeof entry.name !== "string" || typeof entry.task !== "string" || !Array.isArray(entry.args)) {
    throw new InvalidArgumentError({
      argument: "schedule",
      reason: "beat.put needs a schedule entry with a name, a task and args",
    });
  }
  if ((entry.every === undefined) === (entry.cron === undefined)) {
    throw new InvalidArgumentError({
      argument: "schedule",
      reason: `schedule '${entry.name}' needs exactly one of every and cron`,
    });
  }
  return entry;
};
