// A worker's task events: what its runner reports at each step of a task's
// life, turned into Celery's events and handed to the dispatcher. A worker
// with events off has none of this (its runner's `events` is undefined), so
// the step costs one comparison.
import type { Codec } from "../../broker/codec.ts";
import type { Delivery, Envelope } from "../../broker/envelope.ts";
import { toErrorInfo } from "../errors.ts";
import { fromEnvelope, queueOf, type TaskMessage } from "../task-message.ts";
import type { Completed } from "../worker/task-completion.ts";
import type { InvocationOutcome } from "../worker/task-invocation.ts";
import type { EventDispatcher } from "./event-dispatcher.ts";
import type { EventWriter } from "./event-writer.ts";
import { exceptionRepr, isoOrNull, repr } from "./event-repr.ts";
import { EVENT_CODE, type WireEvent } from "./event-wire.ts";

/** What a worker's runner reports at each step of a task's life. */
export interface TaskEventSink {
  received(delivery: Delivery): void;
  started(message: TaskMessage): void;
  /** The handler ran and its outcome is recorded as `completed`. */
  finished(message: TaskMessage, completed: Completed, outcome: InvocationOutcome): void;
  /** Skipped before it ran: revoked, or past its `expires`. */
  skipped(message: TaskMessage, expired: boolean): void;
  rejected(envelope: Envelope, reason: string): void;
}

const NO_KWARGS = "{}";

/** Task bodies up to this size travel in task-received as they are (the subscriber formats them); larger ones are formatted here. */
const RAW_ARGS_MAX = 4096;

const CODE = EVENT_CODE;

export class TaskEvents implements TaskEventSink {
  /** When each running task started (performance.now), for `runtime`. */
  private readonly startedAt = new Map<string, number>();

  constructor(
    private readonly dispatcher: EventDispatcher,
    private readonly hostname: string,
    private readonly codec: Codec,
  ) {}

  // Each event is written straight into the batch, fields in the order of EVENT_FIELDS (event-wire.ts): this runs three times per task.

  received(delivery: Delivery): void {
    const { envelope } = delivery;
    const { task, target, retries, expires, workflow } = envelope.headers;
    if (typeof task !== "string") return; // malformed: the runner rejects it, and that is the event
    const w = this.dispatcher.event(this.hostname, CODE["task-received"], 9);
    w.string(envelope.id);
    w.string(typeof target === "string" ? `${task}(${target})` : task);
    if (envelope.body.byteLength <= RAW_ARGS_MAX) w.binary(envelope.body);
    else w.string(this.argsText(envelope));
    w.string(NO_KWARGS);
    w.number(typeof retries === "number" ? retries : 0);
    optionalTime(w, envelope.eta);
    optionalTime(w, typeof expires === "number" ? expires : undefined);
    // root_id: nil stands for the task's own id (the receiver fills it in), one id fewer to write per task.
    if (typeof workflow === "string") w.string(workflow);
    else w.nil();
    w.nil();
  }

  private argsText(envelope: Envelope): string {
    try {
      return repr(fromEnvelope(envelope, this.codec).args);
    } catch {
      return `<${envelope.body.byteLength} bytes>`;
    }
  }

  started(message: TaskMessage): void {
    this.startedAt.set(message.id, performance.now());
    const w = this.dispatcher.event(this.hostname, CODE["task-started"], 2);
    w.string(message.id);
    w.string(nameOf(message));
  }

  finished(message: TaskMessage, completed: Completed, outcome: InvocationOutcome): void {
    const began = this.startedAt.get(message.id);
    this.startedAt.delete(message.id);
    switch (completed) {
      case "succeeded": {
        if (!outcome.ok) return;
        const w = this.dispatcher.event(this.hostname, CODE["task-succeeded"], 4);
        w.string(message.id);
        w.string(nameOf(message));
        w.string(repr(outcome.value));
        w.number(began === undefined ? 0 : (performance.now() - began) / 1000);
        return;
      }
      case "failed":
      case "retried": {
        const error = outcome.ok
          ? { name: "CodecError", message: "the result could not be encoded", stack: "" }
          : toErrorInfo(outcome.error);
        const w = this.dispatcher.event(
          this.hostname,
          CODE[completed === "failed" ? "task-failed" : "task-retried"],
          4,
        );
        w.string(message.id);
        w.string(nameOf(message));
        w.string(exceptionRepr(error.name, error.message));
        w.string(error.stack ?? "");
        return;
      }
      case "revoked":
        return this.revoked(message, true, false);
    }
  }

  skipped(message: TaskMessage, expired: boolean): void {
    this.revoked(message, false, expired);
  }

  private revoked(message: TaskMessage, terminated: boolean, expired: boolean): void {
    const w = this.dispatcher.event(this.hostname, CODE["task-revoked"], 5);
    w.string(message.id);
    w.string(nameOf(message));
    w.boolean(terminated);
    w.nil();
    w.boolean(expired);
  }

  rejected(envelope: Envelope, reason: string): void {
    const task = envelope.headers.task;
    const w = this.dispatcher.event(this.hostname, CODE["task-rejected"], 4);
    w.string(envelope.id);
    w.string(typeof task === "string" ? task : "(unknown)");
    w.boolean(false);
    w.string(reason);
  }
}

/** An epoch-ms time as ISO 8601, or nil. */
const optionalTime = (w: EventWriter, ms: number | undefined): void =>
  ms === undefined ? w.nil() : w.string(new Date(ms).toISOString());

const nameOf = (message: TaskMessage): string =>
  message.target === undefined ? message.task : `${message.task}(${message.target})`;

/** The task-sent event, in its wire form, for a message about to be published as `envelope`. */
export const taskSentWire = (hostname: string, message: TaskMessage, envelope: Envelope): WireEvent => [
  CODE["task-sent"],
  hostname,
  0,
  0,
  message.id,
  nameOf(message),
  envelope.body.byteLength <= RAW_ARGS_MAX ? envelope.body : repr(message.args),
  NO_KWARGS,
  message.retries,
  isoOrNull(envelope.eta),
  isoOrNull(typeof envelope.headers.expires === "number" ? envelope.headers.expires : undefined),
  envelope.exchange === "" ? envelope.routingKey : queueOf(message.options),
  envelope.exchange,
  envelope.routingKey,
  message.workflow ?? message.id,
  null,
];
