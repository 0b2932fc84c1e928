import type { BrokerNode } from "../../broker/node/node-server.ts";
import { envelopeFromWire } from "../../broker/node/protocol.ts";
import type { Envelope } from "../../broker/envelope.ts";
import type { ScheduleEntry } from "./schedule-definition.ts";
import { LeaseLostError } from "./schedule-errors.ts";
import { settleAll } from "./schedule-store.ts";
import { ScheduleTable, type RunRequest } from "./schedule-table.ts";
import type { ScheduleLog } from "./schedule-log.ts";

/**
 * Keep the schedules, their last runs and the beat lease on a broker node, for
 * every beat and app connected to it (ops `beat.*`). Each op is one step on
 * the node's single thread; `beat.fire` checks the fencing token, records
 * each run and publishes its message into the node's broker in that step, and
 * answers once the messages are confirmed (durable, on a node with a data
 * directory).
 *
 * - `beat.put [entry]` → stored schedule; `beat.remove [name]` → boolean; `beat.list []` → stored schedules
 * - `beat.acquire [holder, ttlMs]` → `[holder, token, expiresAt]`; `beat.release [holder, token]`
 * - `beat.fire [holder, token, [[schedule, instant, envelope|nil], ...]]` →
 *   `["ok", [[outcome, error|nil], ...]]`, or `["fenced", currentToken]` (nothing recorded or sent)
 *
 * The lease expires by the node's clock, so beats need not agree on the time
 * to agree on who leads.
 *
 * @example
 * const node = await BrokerNode.start({ port: 5690 });
 * serveSchedules(node);
 */
export interface ScheduleServiceOptions {
  /** Keep the schedules in this durable log (a node with a data directory); default: in the node's memory. */
  readonly log?: ScheduleLog;
  /** The node's clock, for lease expiry and when a schedule was added. Default Date.now. */
  readonly now?: () => number;
}

export const serveSchedules = (node: BrokerNode, options: ScheduleServiceOptions = {}): ScheduleTable => {
  const now = options.now ?? Date.now;
  const log = options.log;
  const table = log?.table ?? new ScheduleTable();
  // A change is answered once it is durable: a beat must not send what a node restart would take back.
  const answer = (value: unknown): unknown => (log === undefined ? value : log.durable().then(() => value));
  node.serve("beat", (op, args) => answer(handle(op, args)));
  const handle = (op: string, args: readonly unknown[]): unknown => {
    switch (op) {
      case "put":
        return table.put(checkedEntry(args[0]), now());
      case "remove":
        return table.remove(String(args[0]));
      case "list":
        return table.list();
      case "acquire": {
        const [holder, ttlMs] = args as [string, number];
        if (typeof holder !== "string" || !(ttlMs > 0)) throw new Error("beat.acquire needs [holder, ttlMs]");
        const lease = table.acquire(holder, ttlMs, now());
        return [lease.holder, lease.token, lease.expiresAt];
      }
      case "release":
        table.release(String(args[0]), Number(args[1]));
        return null;
      case "fire": {
        const [holder, token, wire] = args as [string, number, [string, number, unknown][]];
        if (typeof holder !== "string" || typeof token !== "number" || !Array.isArray(wire)) throw new Error("beat.fire needs [holder, token, runs]");
        const runs = wire.map(([schedule, instant, envelope]): RunRequest & { envelope: Envelope | undefined } => ({
          schedule: String(schedule),
          instant: Number(instant),
          send: envelope !== null && envelope !== undefined,
          envelope: envelope === null || envelope === undefined ? undefined : ownedEnvelope(envelope),
        }));
        const published = new Map<RunRequest, Promise<void>>();
        let outcomes;
        try {
          outcomes = table.fire(holder, token, runs, now(), (run) => {
            published.set(run, node.publishDurably(run.envelope as Envelope, true));
          });
        } catch (error) {
          if (error instanceof LeaseLostError) return ["fenced", error.current];
          throw error;
        }
        return settleAll(runs, outcomes, published).then((results) => answer(["ok", results.map((r) => [r.outcome, r.error ?? null])]));
      }
      default:
        throw new Error(`unknown beat op '${op}'`);
    }
  };
  return table;
};

/** The body arrived as a view into a socket chunk: keep a copy of its own. */
const ownedEnvelope = (wire: unknown): Envelope => {
  const envelope = envelopeFromWire(wire);
  return { ...envelope, body: envelope.body.slice() };
};

const checkedEntry = (value: unknown): ScheduleEntry => {
  const entry = value as ScheduleEntry;
  if (entry === null || typeof entry !== "object" || typeof entry.name !== "string" || typeof entry.task !== "string" || !Array.isArray(entry.args)) {
    throw new Error("beat.put needs a schedule entry with a name, a task and args");
  }
  if ((entry.every === undefined) === (entry.cron === undefined)) throw new Error(`schedule '${entry.name}' needs exactly one of every and cron`);
  return entry;
};
