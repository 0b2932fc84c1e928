/**
 * The schedules' operations on a broker node (prefix `beat`), declared once
 * for the node's service (schedule-service.ts) and its client
 * (remote-schedule-store.ts).
 *
 * - `beat.put [entry]` → the stored schedule (added, or its definition replaced)
 * - `beat.remove [name]` → whether there was one
 * - `beat.list []` → every stored schedule
 * - `beat.changes [epoch|nil, version]` → the schedules changed and removed since then (all, if the reader is behind)
 * - `beat.acquire [holder, ttlMs]` → `[holder, token, expiresAt]`: the lease in force afterwards
 * - `beat.release [holder, token]`
 * - `beat.fire [holder, token, [[schedule, instant, envelope|nil], ...]]` →
 *   `[[outcome, error|nil], ...]`, or a LeaseLostError (nothing recorded or sent)
 */
import { check, operation, operationGroup } from "../../broker/node/operations.ts";
import type { WireEnvelope } from "../../broker/node/protocol.ts";
import { registerWireErrors } from "../../broker/node/wire-errors.ts";
import type { ScheduleEntry } from "./schedule-definition.ts";
import { LeaseLostError } from "./schedule-errors.ts";
import type { RunOutcome, StoredSchedule, TableChanges } from "./schedule-table.ts";

/** A run on the wire: the message to publish, or nil for a run passed over. */
export type WireRun = readonly [schedule: string, instant: number, envelope: WireEnvelope | null];

registerWireErrors({ LeaseLostError });

export const scheduleOperations = operationGroup("beat", {
  put: operation<StoredSchedule>()(check.map<ScheduleEntry>("schedule")),
  remove: operation<boolean>()(check.string("schedule name")),
  list: operation<StoredSchedule[]>()(),
  changes: operation<TableChanges>()(check.optional(check.string("epoch")), check.number("version")),
  acquire: operation<[holder: string, token: number, expiresAt: number]>()(
    check.string("holder"),
    check.number("lease ms"),
  ),
  release: operation<null>()(check.string("holder"), check.number("token")),
  fire: operation<[outcome: RunOutcome, error: string | null][]>()(
    check.string("holder"),
    check.number("token"),
    check.array<readonly WireRun[]>("runs"),
  ),
});
