/**
 * What a test app sent: every task message in the order the broker accepted
 * it, read back from the message itself (so the arguments are as a worker
 * receives them, after the serialization round trip), and the assertions a
 * test asks of it.
 */
import { AssertionError } from "node:assert";
import { isDeepStrictEqual, inspect } from "node:util";
import type { Codec } from "../../broker/codec.ts";
import type { Envelope } from "../../broker/envelope.ts";
import type { CallOptions } from "../../dsl/options.ts";
import { MalformedMessageError } from "../errors.ts";
import { fromEnvelope } from "../task-message.ts";

/**
 * One task message sent: by the test's code, by a workflow advancing, or as a retry.
 *
 * @example
 * const [first] = t.sent;
 * first.task; // "add"
 * first.args; // [2, 2]
 */
export interface SentTask {
  /** The task's name (for map / starmap steps, the built-in task; `target` names the task applied). */
  readonly task: string;
  /** The arguments, decoded from the message as a worker receives them. */
  readonly args: readonly unknown[];
  /** The options that ride in the message (retry policy, time limits, acksLate, ...). */
  readonly options: CallOptions;
  /** The task id (the same for each retry of a task). */
  readonly id: string;
  /** 0 for the first attempt, n for the n-th retry. */
  readonly retries: number;
  /** The queue (or, through an exchange, the routing key) it was sent to. */
  readonly queue: string;
  readonly exchange: string;
  readonly priority: number;
  /** When it was sent, on the app's clock (epoch ms). */
  readonly sentAt: number;
  /** Not to run before this time (epoch ms), for a countdown, eta or retry backoff. */
  readonly eta?: number;
  /** Not to start after this time (epoch ms). */
  readonly expires?: number;
  /** The workflow (canvas) and step it belongs to. */
  readonly workflow?: string;
  readonly node?: number;
  readonly target?: string;
}

/**
 * Something naming a task: its name, or the registered task.
 *
 * @example
 * t.assertSent(add);        // the registered task
 * t.assertSent("add", [2, 2]); // or its name
 */
export type TaskRef = string | { readonly name: string };

const nameOf = (task: TaskRef): string => (typeof task === "string" ? task : task.name);

/**
 * The log of sent task messages. The same message published again (a
 * rate-limited delivery handed back to its queue, say) is listed once: an
 * entry is a task id at a retry count.
 */
export class SentLog {
  private readonly list: SentTask[] = [];
  private readonly seen = new Set<string>();

  constructor(
    private readonly codec: Codec,
    private readonly now: () => number,
  ) {}

  /** Every message sent, in order. The array is live: it grows as more is sent. */
  get all(): readonly SentTask[] {
    return this.list;
  }

  /**
   * Record `envelope` if it is a task message not seen at this retry count.
   * An envelope that is no task message (published on the broker directly)
   * is left out: the worker refuses it to the dead-letter queue, and says so.
   */
  record(envelope: Envelope): void {
    const retries = envelope.headers.retries;
    const key = `${envelope.id}\u0000${String(retries)}`;
    if (this.seen.has(key)) return;
    let message;
    try {
      message = fromEnvelope(envelope, this.codec);
    } catch (error) {
      if (error instanceof MalformedMessageError) return;
      throw error;
    }
    this.seen.add(key);
    const sent: { -readonly [K in keyof SentTask]: SentTask[K] } = {
      task: message.task,
      args: message.args,
      options: message.options,
      id: message.id,
      retries: message.retries,
      queue: envelope.routingKey,
      exchange: envelope.exchange,
      priority: envelope.priority,
      sentAt: this.now(),
    };
    if (envelope.eta !== undefined) sent.eta = envelope.eta;
    if (message.expires !== undefined) sent.expires = message.expires;
    if (message.workflow !== undefined) {
      sent.workflow = message.workflow;
      sent.node = message.node;
    }
    if (message.target !== undefined) sent.target = message.target;
    this.list.push(sent);
  }

  /** The messages of one task, in order. */
  of(task: TaskRef): SentTask[] {
    const name = nameOf(task);
    return this.list.filter((sent) => sent.task === name || sent.target === name);
  }

  /** The latest message sent with task id `id` (its last retry), if any. */
  latest(id: string): SentTask | undefined {
    for (let i = this.list.length - 1; i >= 0; i--) if (this.list[i].id === id) return this.list[i];
    return undefined;
  }

  /** Forget what was sent so far. */
  clear(): void {
    this.list.length = 0;
    this.seen.clear();
  }
}

/**
 * Whether a message of `task` was sent, with `args` if given (compared deeply, as decoded).
 *
 * @example
 * const message = findSent(t.sent, add, [2, 2]);
 * message?.id; // the task's id
 */
export const findSent = (sent: readonly SentTask[], task: TaskRef, args?: readonly unknown[]): SentTask | undefined => {
  const name = nameOf(task);
  return sent.find(
    (s) => (s.task === name || s.target === name) && (args === undefined || isDeepStrictEqual(s.args, args)),
  );
};

const show = (value: unknown): string => inspect(value, { depth: 4, breakLength: Infinity });

/** A line per message, for failure messages. */
export const describeSent = (sent: readonly SentTask[]): string =>
  sent.length === 0
    ? "nothing was sent"
    : `sent:\n${sent.map((s, i) => `  ${i + 1}. ${s.task}(${s.args.map(show).join(", ")})${s.retries > 0 ? ` (retry ${s.retries})` : ""}`).join("\n")}`;

const wanted = (task: TaskRef, args: readonly unknown[] | undefined): string =>
  `'${nameOf(task)}'${args === undefined ? "" : ` with arguments ${show(args)}`}`;

/**
 * Throw an AssertionError (which node:test, vitest and jest all report) unless
 * a message of `task` was sent, with `args` if given.
 *
 * @example
 * assertSent(t.sent, "emails.send", ["ada@example.com"]);
 */
export const assertSent = (sent: readonly SentTask[], task: TaskRef, args?: readonly unknown[]): SentTask => {
  const found = findSent(sent, task, args);
  if (found !== undefined) return found;
  throw new AssertionError({ message: `expected task ${wanted(task, args)} to have been sent; ${describeSent(sent)}` });
};

/**
 * Throw an AssertionError if a message of `task` was sent (with `args` if given).
 *
 * @example
 * assertNotSent(t.sent, "emails.send");
 */
export const assertNotSent = (sent: readonly SentTask[], task: TaskRef, args?: readonly unknown[]): void => {
  if (findSent(sent, task, args) === undefined) return;
  throw new AssertionError({
    message: `expected task ${wanted(task, args)} not to have been sent; ${describeSent(sent)}`,
  });
};
