import type { Codec } from "../../broker/codec.ts";
import type { Delivery, Envelope } from "../../broker/envelope.ts";
import { toErrorInfo } from "../errors.ts";
import { fromEnvelope, queueOf, type TaskMessage } from "../task-message.ts";
import type { Completed } from "../worker/task-completion.ts";
import type { InvocationOutcome } from "../worker/task-invocation.ts";
import type { EventDispatcher } from "./event-dispatcher.ts";
import { exceptionRepr, isoOrNull, repr } from "./event-repr.ts";
import type { TaskSentEvent } from "./event-types.ts";

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

export class TaskEvents implements TaskEventSink {
  /** When each running task started (performance.now), for `runtime`. */
  private readonly startedAt = new Map<string, number>();

  constructor(
    private readonly dispatcher: EventDispatcher,
    private readonly hostname: string,
    private readonly codec: Codec,
  ) {}

  received(delivery: Delivery): void {
    const { envelope } = delivery;
    let message: TaskMessage;
    try {
      message = fromEnvelope(envelope, this.codec);
    } catch {
      return; // malformed: the runner rejects it, and that is the event
    }
    this.dispatcher.send(this.hostname, {
      type: "task-received",
      uuid: message.id,
      name: nameOf(message),
      args: repr(message.args),
      kwargs: NO_KWARGS,
      retries: message.retries,
      eta: isoOrNull(envelope.eta),
      expires: isoOrNull(message.expires),
      root_id: message.workflow ?? message.id,
      parent_id: null,
    });
  }

  started(message: TaskMessage): void {
    this.startedAt.set(message.id, performance.now());
    this.dispatcher.send(this.hostname, { type: "task-started", uuid: message.id, name: nameOf(message) });
  }

  finished(message: TaskMessage, completed: Completed, outcome: InvocationOutcome): void {
    const began = this.startedAt.get(message.id);
    this.startedAt.delete(message.id);
    const uuid = message.id;
    const name = nameOf(message);
    switch (completed) {
      case "succeeded":
        if (!outcome.ok) return;
        return this.dispatcher.send(this.hostname, {
          type: "task-succeeded",
          uuid,
          name,
          result: repr(outcome.value),
          runtime: began === undefined ? 0 : (performance.now() - began) / 1000,
        });
      case "failed":
      case "retried": {
        const error = outcome.ok ? { name: "CodecError", message: "the result could not be encoded", stack: "" } : toErrorInfo(outcome.error);
        return this.dispatcher.send(this.hostname, {
          type: completed === "failed" ? "task-failed" : "task-retried",
          uuid,
          name,
          exception: exceptionRepr(error.name, error.message),
          traceback: error.stack ?? "",
        });
      }
      case "revoked":
        return this.dispatcher.send(this.hostname, { type: "task-revoked", uuid, name, terminated: true, signum: null, expired: false });
    }
  }

  skipped(message: TaskMessage, expired: boolean): void {
    this.dispatcher.send(this.hostname, { type: "task-revoked", uuid: message.id, name: nameOf(message), terminated: false, signum: null, expired });
  }

  rejected(envelope: Envelope, reason: string): void {
    const task = envelope.headers.task;
    this.dispatcher.send(this.hostname, {
      type: "task-rejected",
      uuid: envelope.id,
      name: typeof task === "string" ? task : "(unknown)",
      requeue: false,
      reason,
    });
  }
}

const nameOf = (message: TaskMessage): string => (message.target === undefined ? message.task : `${message.task}(${message.target})`);

/** The fields of the task-sent event for a message about to be published as `envelope`. */
export const taskSentFields = (message: TaskMessage, envelope: Envelope): Omit<TaskSentEvent, "hostname" | "timestamp" | "utcoffset" | "pid" | "clock"> => ({
  type: "task-sent",
  uuid: message.id,
  name: nameOf(message),
  args: repr(message.args),
  kwargs: NO_KWARGS,
  retries: message.retries,
  eta: isoOrNull(envelope.eta),
  expires: isoOrNull(typeof envelope.headers.expires === "number" ? envelope.headers.expires : undefined),
  queue: envelope.exchange === "" ? envelope.routingKey : queueOf(message.options),
  exchange: envelope.exchange,
  routing_key: envelope.routingKey,
  root_id: message.workflow ?? message.id,
  parent_id: null,
});
