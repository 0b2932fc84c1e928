// The log of a durable result store: each log record is a msgpack array of
// entries, the writes one group commit carries, and the replay folds the
// entries back into store entries.
//
// A task's entry is what the writes left (the whole record), not the calls:
// replaying it never depends on what the store held before, so a record the
// store had evicted or expired comes back exactly as it was last written,
// and a final state logged once is only ever replaced by a record that was
// also written live. Workflow bookkeeping (graphs, join arrivals, claims) is
// logged as the call with its time, and the replay applies the same rules as
// the in-memory store, expiry included.
import { Decoder } from "@msgpack/msgpack";
import { FrameEncoder } from "../../../broker/node/frame-encoder.ts";
import type { MessageGraph } from "../../../dsl/graph.ts";
import type { RemoteErrorInfo, TaskState } from "../../../dsl/result.ts";
import { MemoryResultStore, type ResultRecord, type StoreEntry } from "../result-store.ts";

const Kind = {
  Record: 1,
  Forget: 2,
  Graph: 3,
  Arrive: 4,
  Claim: 5,
  Release: 6,
  Reserve: 7,
  ReserveMembers: 8,
} as const;

type Nullable<T> = T | null;

/** One write, as logged. */
export type LogEntry =
  | [
      typeof Kind.Record,
      id: string,
      task: string,
      state: TaskState,
      retries: number,
      updatedAt: number,
      workflow: Nullable<string>,
      node: Nullable<number>,
      value: Nullable<Uint8Array>,
      error: Nullable<RemoteErrorInfo>,
      // Absent in logs written before tasks could report progress.
      info?: Nullable<Uint8Array>,
    ]
  | [typeof Kind.Forget, id: string]
  | [typeof Kind.Graph, graph: MessageGraph, at: number]
  | [typeof Kind.Arrive, key: string, members: readonly number[], at: number]
  | [typeof Kind.Claim, key: string, at: number]
  | [typeof Kind.Release, key: string]
  | [typeof Kind.Reserve, key: string, id: string, until: number]
  | [typeof Kind.ReserveMembers, key: string, id: string, members: readonly number[], until: number];

/** The entries of each kind of write. */
export const logEntry = {
  record: (record: ResultRecord): LogEntry => [
    Kind.Record,
    record.id,
    record.task,
    record.state,
    record.retries,
    record.updatedAt,
    record.workflow ?? null,
    record.node ?? null,
    record.value ?? null,
    record.error ?? null,
    record.info ?? null,
  ],
  forget: (id: string): LogEntry => [Kind.Forget, id],
  graph: (graph: MessageGraph, at: number): LogEntry => [Kind.Graph, graph, at],
  arrive: (key: string, members: readonly number[], at: number): LogEntry => [Kind.Arrive, key, members, at],
  claim: (key: string, at: number): LogEntry => [Kind.Claim, key, at],
  release: (key: string): LogEntry => [Kind.Release, key],
  /** What a reservation left: the key's holder and until when (the same after a call that found it held). */
  reserve: (key: string, id: string, until: number): LogEntry => [Kind.Reserve, key, id, until],
  /** Members of the set `key` that `id` took, the set kept to `until` (a call that took none and kept the time logs nothing). */
  reserveMembers: (key: string, id: string, members: readonly number[], until: number): LogEntry => [
    Kind.ReserveMembers,
    key,
    id,
    members,
    until,
  ],
  /** The entry that puts `entry` back (what a compaction writes). */
  of: (entry: StoreEntry): LogEntry => {
    switch (entry.kind) {
      case "record":
        return logEntry.record(entry.record);
      case "graph":
        return logEntry.graph(entry.graph, entry.at);
      case "join":
        return logEntry.arrive(entry.key, entry.members, entry.at);
      case "claim":
        return logEntry.claim(entry.key, entry.at);
      case "reservation":
        return logEntry.reserve(entry.key, entry.id, entry.until);
      case "members":
        return logEntry.reserveMembers(entry.key, entry.id, entry.members, entry.until);
    }
  },
};

/** A log record holds entries up to about this many bytes (a larger single entry gets a record of its own). */
const RECORD_BYTES = 1024 * 1024;

/**
 * Encodes entries into log records; one per store, reused.
 *
 * @example
 * const encoder = new ResultLogEncoder();
 * await log.appendMany(encoder.encode([logEntry.claim("wf:sent:2", Date.now())]));
 */
export class ResultLogEncoder {
  // Fields left undefined are left out, as on the wire, so a graph reads back exactly as it was saved.
  private readonly encoder = new FrameEncoder();

  /** `entries` as log records, in order, each about RECORD_BYTES at most. */
  encode(entries: readonly LogEntry[]): Uint8Array[] {
    const records: Uint8Array[] = [];
    let from = 0;
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      // A rough size: what dominates is a result's value; everything else is small.
      const size = 64 + (entry[0] === Kind.Record && entry[8] !== null ? entry[8].length : 0);
      if (i > from && bytes + size > RECORD_BYTES) {
        records.push(this.encoder.encode(entries.slice(from, i)));
        from = i;
        bytes = 0;
      }
      bytes += size;
    }
    if (from < entries.length) records.push(this.encoder.encode(from === 0 ? entries : entries.slice(from)));
    return records;
  }
}

/** What a replay found, by kind, for the node's start-up line. */
export interface ResultLogSummary {
  readonly records: number;
  readonly graphs: number;
  readonly joins: number;
  readonly claims: number;
  readonly reservations: number;
  readonly memberReservations: number;
}

const recordOf = (r: Extract<LogEntry, { 0: typeof Kind.Record }>): ResultRecord => {
  const [, id, task, state, retries, updatedAt, workflow, node, value, error, info] = r;
  if (
    typeof id !== "string" ||
    typeof task !== "string" ||
    typeof state !== "string" ||
    typeof updatedAt !== "number"
  ) {
    throw new TypeError("a task record needs an id, a task, a state and a time");
  }
  return {
    id,
    task,
    state,
    retries,
    updatedAt,
    ...(workflow !== null ? { workflow, node: node ?? undefined } : {}),
    ...(value !== null ? { value } : {}),
    ...(error !== null ? { error } : {}),
    ...(info !== undefined && info !== null ? { info } : {}),
  };
};

/**
 * Fold `records` (oldest first) into the entries a store holds after them,
 * each kind least recently written first, leaving out what had expired by
 * `now` under `ttlMs`. A record that cannot be read is reported and skipped.
 *
 * @example
 * const { entries } = replayResultLog(records, 86_400_000, Date.now(), (reason) => console.error(reason));
 * for (const entry of entries) memory.restore(entry);
 */
export const replayResultLog = (
  records: readonly Uint8Array[],
  ttlMs: number,
  now: number,
  report: (reason: string) => void,
): { entries: StoreEntry[]; summary: ResultLogSummary } => {
  const decoder = new Decoder();
  const results = new Map<string, ResultRecord>();
  const graphs = new Map<string, { graph: MessageGraph; at: number }>();
  const joins = new Map<string, { members: Set<number>; at: number }>();
  const claims = new Map<string, number>();
  const reservations = new Map<string, { id: string; until: number }>();
  // Replayed into a store of its own, which applies the same rules as when the calls were made.
  const memberSets = new MemoryResultStore({ now: () => now });
  const expired = (at: number, by: number) => by - at > ttlMs;
  for (let i = 0; i < records.length; i++) {
    let entries: LogEntry[];
    try {
      // A copy: what is decoded (a result's bytes) must not hold on to the whole segment read at start.
      entries = decoder.decode(records[i].slice()) as LogEntry[];
      if (!Array.isArray(entries)) throw new TypeError("not an array of entries");
    } catch (error) {
      report(`record ${i} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    for (let j = 0; j < entries.length; j++) {
      const record = entries[j];
      try {
        if (!Array.isArray(record)) throw new TypeError("not an array");
        switch (record[0]) {
          case Kind.Record: {
            const result = recordOf(record);
            // Re-inserted, so the map's order is the order of last writes.
            results.delete(result.id);
            results.set(result.id, result);
            break;
          }
          case Kind.Forget:
            results.delete(record[1]);
            break;
          case Kind.Graph:
            graphs.delete(record[1].id);
            graphs.set(record[1].id, { graph: record[1], at: record[2] });
            break;
          case Kind.Arrive: {
            const [, key, members, at] = record;
            const join = joins.get(key);
            // As in the store: a join that expired before this arrival starts again from it.
            if (join === undefined || expired(join.at, at)) joins.set(key, { members: new Set(members), at });
            else for (const member of members) join.members.add(member);
            break;
          }
          case Kind.Claim: {
            const [, key, at] = record;
            const claimed = claims.get(key);
            if (claimed === undefined || expired(claimed, at)) {
              claims.delete(key);
              claims.set(key, at);
            }
            break;
          }
          case Kind.Release:
            claims.delete(record[1]);
            break;
          case Kind.Reserve: {
            // Logged as what the call left, so the last entry of a key is its holder.
            const [, key, id, until] = record;
            if (typeof key !== "string" || typeof id !== "string" || typeof until !== "number")
              throw new TypeError("a reservation needs a key, an id and a time");
            reservations.delete(key);
            reservations.set(key, { id, until });
            break;
          }
          case Kind.ReserveMembers: {
            const [, key, id, members, until] = record;
            if (
              typeof key !== "string" ||
              typeof id !== "string" ||
              !Array.isArray(members) ||
              !members.every((member) => typeof member === "number") ||
              typeof until !== "number"
            )
              throw new TypeError("a reservation of members needs a key, an id, numbers and a time");
            memberSets.restore({ kind: "members", key, id, members, until });
            break;
          }
          default:
            report(`record ${i}, entry ${j}: unknown kind ${String((record as unknown[])[0])}`);
        }
      } catch (error) {
        report(`record ${i}, entry ${j} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
  const entries: StoreEntry[] = [];
  for (const record of results.values()) if (!expired(record.updatedAt, now)) entries.push({ kind: "record", record });
  for (const { graph, at } of graphs.values()) if (!expired(at, now)) entries.push({ kind: "graph", graph, at });
  for (const [key, { members, at }] of joins)
    if (!expired(at, now)) entries.push({ kind: "join", key, members: [...members], at });
  for (const [key, at] of claims) if (!expired(at, now)) entries.push({ kind: "claim", key, at });
  for (const [key, { id, until }] of reservations)
    if (until > now) entries.push({ kind: "reservation", key, id, until });
  for (const entry of memberSets.contents()) entries.push(entry);
  const count = (kind: StoreEntry["kind"]) => entries.filter((entry) => entry.kind === kind).length;
  return {
    entries,
    summary: {
      records: count("record"),
      graphs: count("graph"),
      joins: count("join"),
      claims: count("claim"),
      reservations: count("reservation"),
      memberReservations: count("members"),
    },
  };
};
