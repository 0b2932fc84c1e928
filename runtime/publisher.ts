// Sending task messages: record the task as PENDING, then publish and wait for the
// broker's confirm; a message no queue receives is refused rather than lost.
import type { Codec } from "../broker/codec.ts";
import type { Envelope } from "../broker/envelope.ts";
import type { Transport } from "../broker/transport.ts";
import { mergeOptions, type CallOptions } from "../dsl/options.ts";
import type { ResultStore } from "./results/result-store.ts";
import { toEnvelope, type TaskMessage } from "./task-message.ts";
import type { TaskOptions } from "./task.ts";

// A task message that no queue receives would leave its result pending forever: refuse it instead.
const MANDATORY = { mandatory: true } as const;

/** The serializable part of a task's default options (what may ride in a message). */
export const callDefaults = (options: TaskOptions | undefined): CallOptions => {
  if (options === undefined) return {};
  // A rate limit is the worker's to enforce: it never rides in a message (its key may be a function).
  const { rateLimit: _rateLimit, ...callable } = options;
  if (callable.retry?.retryOn === undefined) return callable as CallOptions;
  const { retryOn: _retryOn, ...retry } = callable.retry;
  return { ...callable, retry };
};

/**
 * Sends task messages: records the task as PENDING (so its id is known, not
 * "unknown"), then publishes and waits for the broker's confirm. A value that
 * cannot be serialized throws before anything is recorded or sent.
 */
export class Publisher {
  /**
   * Called with each task message just before it is published (the app's
   * task-sent event, when it sends events); a promise it returns delays the publish.
   */
  beforePublish: ((message: TaskMessage, envelope: Envelope) => void | Promise<void>) | undefined = undefined;

  constructor(
    private readonly transport: Transport,
    private readonly store: ResultStore,
    private readonly codec: Codec,
    private readonly defaultsOf: (task: string) => CallOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** The options a message of `task` is sent with: the task's defaults, then `options` over them. */
  optionsFor(task: string, options: CallOptions | undefined): CallOptions {
    return mergeOptions(this.defaultsOf(task), options);
  }

  /**
   * Record PENDING (or RETRY), then publish. The record is written before the
   * publish so that a fast worker's STARTED and SUCCESS always land after it.
   * Resolves once the broker confirms; throws CodecError synchronously-rejected
   * before anything is recorded or sent.
   */
  publish(message: TaskMessage): Promise<void> {
    let envelope: Envelope;
    try {
      envelope = toEnvelope(message, this.codec, this.now());
    } catch (error) {
      return Promise.reject(error);
    }
    if (message.options.ignoreResult && message.workflow === undefined) return this.send(envelope, message, false);
    const recorded = this.store.setState(
      message.id,
      message.task,
      message.retries > 0 ? "RETRY" : "PENDING",
      detailsOf(message),
    );
    return recorded instanceof Promise
      ? recorded.then(() => this.send(envelope, message, true))
      : this.send(envelope, message, true);
  }

  private send(envelope: Envelope, message: TaskMessage, recorded: boolean): Promise<void> {
    const before = this.beforePublish?.(message, envelope);
    if (before instanceof Promise) return before.then(() => this.confirm(envelope, message.id, recorded));
    return this.confirm(envelope, message.id, recorded);
  }

  private confirm(envelope: Envelope, id: string, recorded: boolean): Promise<void> {
    const confirmed = this.transport.publish(envelope, MANDATORY);
    if (!recorded) return confirmed;
    return confirmed.catch(async (error: unknown) => {
      // Refused, so never sent: leave no record that would wait for ever. A lost connection is
      // different: the publish may have gone through and its task may even have finished.
      if (!isConnectionLoss(error)) await this.store.forget(id);
      throw error;
    });
  }
}

const detailsOf = (message: TaskMessage) =>
  message.workflow !== undefined
    ? { retries: message.retries, workflow: message.workflow, node: message.node as number }
    : message.retries === 0
      ? undefined
      : { retries: message.retries };

const isConnectionLoss = (error: unknown): boolean => {
  const tag = (error as { _tag?: unknown } | null)?._tag;
  return tag === "ConnectionLostError" || tag === "RequestTimeoutError";
};
