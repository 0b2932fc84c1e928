import type { Codec } from "../../broker/codec.ts";
import type { Delivery, Envelope } from "../../broker/envelope.ts";
import { toErrorInfo } from "../errors.ts";
import { fromEnvelope, queueOf, type TaskMessage } from "../task-message.ts";
import type { Completed } from "../worker/task-completion.ts";
import type { InvocationOutcome } from "../worker/task-invocation.ts";
import type { EventDispatcher } from "./event-dispatcher.ts";
import { exceptionRepr, isoOrNull, repr } from "./event-repr.ts";
import { EVENT_CODE, type WireEvent } from "./event-wire.ts";

/**
 * A worker's task events: what its runner reports at each step of a task's
 * life, turned into Celery's events and handed to the dispatcher. A worker
 * with events off has none of this (its runner's `events` is undefined), so
 * the step costs one comparison.
 */
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

  // Each event is built in its wire form (event-wire.ts) here: this runs three times per task.

  received(delivery: Delivery): void {
    const { envelope } = delivery;
    const { task, target, retries, expires, workflow } = envelope.headers;
    if (typeof task !== "string") return; // malformed: the runner rejects it, and that is the event
    this.dispatcher.sendWire([
      CODE["task-received"],
      this.hostname,
      0,
      0,
      envelope.id,
      typeof target === "string" ? `${task}(${target})` : task,
      envelope.body.byteLength <= RAW_ARGS_MAX ? envelope.body : this.argsText(envelope),
      NO_KWARGS,
      typeof retries === "number" ? retries : 0,
      isoOrNull(envelope.eta),
      isoOrNull(typeof expires === "number" ? expires : undefined),
      typeof workflow === "string" ? workflow : envelope.id,
      null,
    ]);
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
    this.dispatcher.sendWire([CODE["task-started"], this.hostname, 0, 0, message.id, nameOf(message)]);
  }

  finished(message: TaskMessage, completed: Completed, outcome: InvocationOutcome): void {
    const began = this.startedAt.get(message.id);
    this.startedAt.delete(message.id);
    const uuid = message.id;
    const name = nameOf(message);
    switch (completed) {
      case "succeeded":
        if (!outcome.ok) return;
        return this.dispatcher.sendWire([
          CODE["task-succeeded"],
          this.hostname,
          0,
          0,
          uuid,
          name,
          repr(outcome.value),
          began === undefined ? 0 : (performance.now() - began) / 1000,
        ]);
      case "failed":
      case "retried": {
        const error = outcome.ok ? { name: "CodecError", message: "the result could not be encoded", stack: "" } : toErrorInfo(outcome.error);
        return this.dispatcher.sendWire([
          CODE[completed === "failed" ? "task-failed" : "task-retried"],
          this.hostname,
          0,
          0,
          uuid,
          name,
          exceptionRepr(error.name, error.message),
          error.stack ?? "",
        ]);
      }
      case "revoked":
        return this.dispatcher.sendWire([CODE["task-revoked"], this.hostname, 0, 0, uuid, name, true, null, false]);
    }
  }

  skipped(message: TaskMessage, expired: boolean): void {
    this.dispatcher.sendWire([CODE["task-revoked"], this.hostname, 0, 0, message.id, nameOf(message), false, null, expired]);
  }

  rejected(envelope: Envelope, reason: string): void {
    const task = envelope.headers.task;
    this.dispatcher.sendWire([CODE["task-rejected"], this.hostname, 0, 0, envelope.id, typeof task === "string" ? task : "(unknown)", false, reason]);
  }
}

const nameOf = (message: TaskMessage): string => (message.target === undefined ? message.task : `${message.task}(${message.target})`);

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
