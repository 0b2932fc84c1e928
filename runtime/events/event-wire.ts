// The events' wire form: a batch is the msgpack array
// `[1, pid, utcoffset, ...events]`, each event the array
// `[typeCode, hostname, timestamp, clock, ...fields]` with the fields of its
// type in the order of EVENT_FIELDS. Positional, because encoding each
// event's field names cost the worker more than everything else an event
// does. `args` may travel as the task message's own body (msgpack bytes of
// `[args]` or `[args, options]`), which the receiver turns into text: the
// worker then neither decodes nor formats them. A nil `root_id` stands for
// the task's own id.
import { Decoder } from "@msgpack/msgpack";
import { repr } from "./event-repr.ts";
import { EVENT_TYPES, type CelerityEvent, type EventType } from "./event-types.ts";

/** The first element of every batch: the version of this wire form. */
export const EVENT_WIRE_VERSION = 1;

/** The fields of each type beyond the common ones, in wire order. */
export const EVENT_FIELDS: { readonly [T in EventType]: readonly string[] } = {
  "task-sent": [
    "uuid",
    "name",
    "args",
    "kwargs",
    "retries",
    "eta",
    "expires",
    "queue",
    "exchange",
    "routing_key",
    "root_id",
    "parent_id",
  ],
  "task-received": ["uuid", "name", "args", "kwargs", "retries", "eta", "expires", "root_id", "parent_id"],
  "task-started": ["uuid", "name"],
  "task-succeeded": ["uuid", "name", "result", "runtime"],
  "task-failed": ["uuid", "name", "exception", "traceback"],
  "task-retried": ["uuid", "name", "exception", "traceback"],
  "task-revoked": ["uuid", "name", "terminated", "signum", "expired"],
  "task-rejected": ["uuid", "name", "requeue", "reason"],
  "worker-online": ["freq", "sw_ident", "sw_ver", "sw_sys"],
  "worker-heartbeat": ["freq", "sw_ident", "sw_ver", "sw_sys", "active", "processed", "loadavg"],
  "worker-offline": ["freq", "sw_ident", "sw_ver", "sw_sys"],
};

/** The wire code of each type: its index in EVENT_TYPES. */
export const EVENT_CODE = Object.fromEntries(EVENT_TYPES.map((type, code) => [type, code])) as {
  readonly [T in EventType]: number;
};

/** Index of the timestamp and the clock in a wire event (the dispatcher stamps them). */
export const TIMESTAMP_AT = 2;
export const CLOCK_AT = 3;

/** A wire event with its fields in place and its timestamp and clock left to the dispatcher. */
export type WireEvent = unknown[];

/** The wire form of an event given as an object (for the events sent once per task or less). */
export const toWire = (hostname: string, fields: { readonly type: EventType } & Record<string, unknown>): WireEvent => {
  const names = EVENT_FIELDS[fields.type];
  const wire: WireEvent = [EVENT_CODE[fields.type], hostname, 0, 0];
  for (let i = 0; i < names.length; i++) wire.push(fields[names[i]] ?? null);
  return wire;
};

const argsDecoder = new Decoder();

/** Text of `args` as it travelled: already text, or a task body whose first element is the argument list. */
const argsText = (value: unknown): string => {
  if (typeof value === "string") return value;
  if (!(value instanceof Uint8Array)) return repr(value);
  try {
    const body = argsDecoder.decode(value);
    return repr(Array.isArray(body) ? body[0] : body);
  } catch {
    return `<${value.byteLength} bytes>`;
  }
};

/** Read a batch back into events; throws TypeError naming what is wrong with a batch that is not one. */
export const fromWire = (batch: unknown): CelerityEvent[] => {
  if (!Array.isArray(batch) || batch[0] !== EVENT_WIRE_VERSION)
    throw new TypeError(`not an event batch of wire version ${EVENT_WIRE_VERSION}`);
  const pid = batch[1] as number;
  const utcoffset = batch[2] as number;
  const events: CelerityEvent[] = [];
  for (let i = 3; i < batch.length; i++) {
    const wire = batch[i] as unknown[];
    if (!Array.isArray(wire)) continue;
    const type = EVENT_TYPES[wire[0] as number];
    if (type === undefined) continue; // a type from a newer sender: skipped, not fatal
    const event: Record<string, unknown> = {
      type,
      hostname: wire[1],
      timestamp: wire[TIMESTAMP_AT],
      utcoffset,
      pid,
      clock: wire[CLOCK_AT],
    };
    const names = EVENT_FIELDS[type];
    for (let f = 0; f < names.length; f++) event[names[f]] = wire[4 + f] ?? null;
    if ("args" in event) event.args = argsText(event.args);
    if ("root_id" in event && event.root_id === null) event.root_id = event.uuid;
    events.push(event as unknown as CelerityEvent);
  }
  return events;
};
