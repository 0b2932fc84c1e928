// `app.queues`: the cluster's queues as an operator sees them (list, pause, resume, purge,
// dead letters), through the transport's QueueAdmin.
import { Data } from "effect";
import type { DeadLetter } from "../../broker/envelope.ts";
import { queueAdminOf, type QueueInfo } from "../../broker/queue-admin.ts";
import type { Transport } from "../../broker/transport.ts";
import { READY_STATES } from "../../dsl/result.ts";
import type { ResultStore } from "../results/result-store.ts";

/**
 * `app.queues`: the cluster's queues as an operator sees them. Pausing is
 * the broker's (so it holds for every worker, present and future, and a
 * durable node keeps it across a restart), not a message to each worker.
 *
 * @example
 * await app.queues.pause("emails");
 * console.log((await app.queues.list()).find((queue) => queue.name === "emails")?.ready, "emails waiting");
 * await app.queues.resume("emails");
 */
export interface Queues {
  /** Every queue with its depths: ready, delayed (eta), unacked, consumers, paused. */
  list(): Promise<readonly QueueInfo[]>;
  /** Stop delivering `queue` to every worker until `resume`; messages keep arriving and wait. */
  pause(queue: string): Promise<void>;
  resume(queue: string): Promise<void>;
  /** Delete every message waiting in `queue` (ready or delayed); resolves to how many. */
  purge(queue: string): Promise<number>;
  /** The dead letters of `queue` (or of the dead-letter queue named), with why each is there. */
  deadLetters(queue: string): Promise<readonly DeadLetter[]>;
  /**
   * Send dead letters (all, or those with `ids`) back to the queue each came
   * from, to run again; resolves to how many. A task's final result (the
   * FAILURE its rejection recorded) is cleared back to PENDING first, so the
   * new run's outcome is the one kept. A workflow step's later steps, failed
   * with it, stay failed.
   */
  requeue(queue: string, ids?: readonly string[]): Promise<number>;
  /** Delete dead letters (all, or those with `ids`) for good; resolves to how many. */
  discard(queue: string, ids?: readonly string[]): Promise<number>;
}

/**
 * The app's broker cannot manage queues (a transport without QueueAdmin).
 *
 * @example
 * const app = createApp({ broker: "redis://127.0.0.1:6379/0" });
 * await app.queues.pause("emails"); // throws QueueManagementUnsupportedError
 */
export class QueueManagementUnsupportedError extends Data.TaggedError("QueueManagementUnsupportedError")<{
  readonly transport: string;
  readonly operation: string;
}> {
  override get message(): string {
    return `cannot ${this.operation}: the ${this.transport} transport does not manage queues (the embedded broker and the broker node do)`;
  }
}

export const queuesOf = (transport: Transport, results: ResultStore): Queues => {
  const admin = (operation: string) => {
    const found = queueAdminOf(transport);
    if (found === undefined)
      throw new QueueManagementUnsupportedError({ transport: transport.constructor.name, operation });
    return found;
  };
  return {
    list: async () => admin("list queues").listQueues(),
    pause: async (queue) => admin(`pause queue '${queue}'`).pause(queue),
    resume: async (queue) => admin(`resume queue '${queue}'`).resume(queue),
    purge: async (queue) => admin(`purge queue '${queue}'`).purge(queue),
    deadLetters: (queue) => transport.deadLetters(queue),
    requeue: async (queue, ids) => {
      const queues = admin(`requeue the dead letters of '${queue}'`);
      const wanted = ids === undefined ? undefined : new Set(ids);
      const letters = (await transport.deadLetters(queue)).filter(
        (letter) => wanted === undefined || wanted.has(letter.envelope.id),
      );
      for (const { envelope } of letters) {
        const task = envelope.headers.task;
        if (typeof task !== "string") continue;
        const record = await results.get(envelope.id);
        if (record === undefined || !READY_STATES.has(record.state)) continue;
        await results.forget(envelope.id);
        await results.setState(envelope.id, task, "PENDING");
      }
      return queues.requeueDeadLetters(
        queue,
        letters.map((letter) => letter.envelope.id),
      );
    },
    discard: async (queue, ids) => admin(`discard the dead letters of '${queue}'`).discardDeadLetters(queue, ids),
  };
};
