import type { Codec } from "../broker/codec.ts";
import type { Transport } from "../broker/transport.ts";
import { mergeOptions, type CallOptions } from "../dsl/options.ts";
import type { ResultStore } from "./result-store.ts";
import { toEnvelope, type TaskMessage } from "./task-message.ts";
import type { TaskOptions } from "./task.ts";

// A task message that no queue receives would leave its result pending forever: refuse it instead.
const MANDATORY = { mandatory: true } as const;

/** The serializable part of a task's default options (what may ride in a message). */
export const callDefaults = (options: TaskOptions | undefined): CallOptions => {
  if (options === undefined) return {};
  if (options.retry?.retryOn === undefined) return options as CallOptions;
  const { retryOn: _retryOn, ...retry } = options.retry;
  return { ...options, retry };
};

/**
 * Sends task messages: records the task as PENDING (so its id is known, not
 * "unknown"), then publishes and waits for the broker's confirm. A value that
 * cannot be serialized throws before anything is recorded or sent.
 */
export class Publisher {
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

  async publish(message: TaskMessage): Promise<void> {
    const envelope = toEnvelope(message, this.codec, this.now());
    if (!message.options.ignoreResult || message.workflow !== undefined) {
      await this.store.setState(message.id, message.task, message.retries > 0 ? "RETRY" : "PENDING", detailsOf(message));
    }
    try {
      await this.transport.publish(envelope, MANDATORY);
    } catch (error) {
      // Not sent, so not pending: leave no record that would wait forever.
      await this.store.forget(message.id);
      throw error;
    }
  }
}

const detailsOf = (message: TaskMessage) =>
  message.workflow === undefined ? { retries: message.retries } : { retries: message.retries, workflow: message.workflow, node: message.node as number };
