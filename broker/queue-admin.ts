// Queue management: what an operator does to a running cluster's queues rather than
// what producers and consumers do with them. A transport that supports it implements
// QueueAdmin beside Transport (the embedded broker and the broker node do); `queueAdminOf`
// finds it through wrappers such as the signing transport. Its suite: queue-admin-conformance.ts.
import type { Transport } from "./transport.ts";

/**
 * A queue as an operator sees it: its depths (ready, delayed, unacked), its consumers,
 * whether it is paused, and where its dead letters go.
 *
 * @example
 * for (const queue of await app.queues.list()) console.log(queue.name, queue.ready, queue.delayed, queue.unacked, queue.paused ? "paused" : "");
 */
export interface QueueInfo {
  readonly name: string;
  readonly ready: number;
  readonly delayed: number;
  readonly unacked: number;
  readonly consumers: number;
  /** Paused: messages are kept, none is delivered until the queue is resumed. */
  readonly paused: boolean;
  /** Where its rejected, expired and exhausted messages go (empty for a dead-letter queue itself). */
  readonly deadLetterQueue: string;
  readonly isDeadLetterQueue: boolean;
  readonly autoDelete: boolean;
}

/**
 * The queue management operations of a transport, found with `queueAdminOf`; `app.queues` is built on them.
 *
 * @example
 * const admin = queueAdminOf(app.broker);
 * if (admin !== undefined) console.log(await admin.purge("emails"), "messages removed");
 */
export interface QueueAdmin {
  /** Every queue the broker holds, by name, with its depths. */
  listQueues(): Promise<readonly QueueInfo[]>;
  /**
   * Remove every message waiting in `queue`, ready or delayed (messages a
   * consumer holds unacknowledged are left to it); resolves to how many were
   * removed. Throws QueueNotFoundError for a queue the broker does not hold.
   */
  purge(queue: string): Promise<number>;
  /**
   * Stop delivering from `queue` to every consumer, present and future, until
   * `resume`: publishing goes on, messages wait. Deliveries already made are
   * not recalled. A queue not declared yet is created paused. Kept across a
   * restart of a durable node.
   */
  pause(queue: string): Promise<void>;
  /** Deliver from `queue` again. */
  resume(queue: string): Promise<void>;
  /**
   * Move dead letters back to the queue each came from, as new messages
   * (delivery count 0), and resolve to how many moved. `queue` names the
   * dead-letter queue or the queue whose dead letters they are; `ids`
   * selects messages by id (default: all). Dead letters a consumer of the
   * dead-letter queue holds unacknowledged stay where they are.
   */
  requeueDeadLetters(queue: string, ids?: readonly string[]): Promise<number>;
  /** Delete dead letters for good (selected as for `requeueDeadLetters`); resolves to how many were deleted. */
  discardDeadLetters(queue: string, ids?: readonly string[]): Promise<number>;
}

const ADMIN_METHODS = ["listQueues", "purge", "pause", "resume", "requeueDeadLetters", "discardDeadLetters"] as const;

const implementsAdmin = (value: unknown): value is QueueAdmin =>
  typeof value === "object" &&
  value !== null &&
  ADMIN_METHODS.every((method) => typeof (value as Record<string, unknown>)[method] === "function");

/**
 * The queue management of `transport`, or undefined when it has none. A
 * wrapping transport (signing) exposes the one it wraps as `inner`, which is
 * looked at in turn: queue management does not go through signing.
 *
 * @example
 * const admin = queueAdminOf(app.broker);
 * await admin?.pause("emails");
 */
export const queueAdminOf = (transport: Transport): QueueAdmin | undefined => {
  let current: unknown = transport;
  for (let depth = 0; depth < 4 && current !== undefined; depth++) {
    if (implementsAdmin(current)) return current;
    current = (current as { inner?: unknown }).inner;
  }
  return undefined;
};
