// What happens after a task ran: its outcome is stored, a failure is retried
// when its policy allows, and a workflow step advances its workflow. Every
// method is safe to repeat for a redelivered message: the store keeps the
// first final state and workflow joins count each step once.
import type { Codec } from "../../broker/codec.ts";
import type { OutcomeAck } from "../../broker/transport.ts";
import type { CallOptions } from "../../dsl/options.ts";
import type { RemoteErrorInfo } from "../../dsl/result.ts";
import { FrameTooLargeError, DEFAULT_MAX_FRAME_BYTES } from "../../broker/node/wire-frame.ts";
import {
  MaxRetriesExceededError,
  ResultTooLargeError,
  RetryRequest,
  TaskRevokedError,
  toErrorInfo,
} from "../errors.ts";
import type { Publisher } from "../publisher.ts";
import type { ResultRecord, ResultStore } from "../results/result-store.ts";
import { mayRetry, retryDelay } from "./retry-policy.ts";
import type { TaskMessage } from "../task-message.ts";
import type { TaskDefinition } from "../task.ts";
import type { WorkflowExecutor } from "../workflow/workflow.ts";

/** How a task's run ended, as its completion recorded it. */
export type Completed = "succeeded" | "failed" | "retried" | "revoked";

/**
 * The largest encoded value stored as a result: what a broker node's frame
 * holds by default. The in-memory store keeps to it too, so a task fails in
 * one process on the values it would fail on across processes.
 */
export const MAX_RESULT_BYTES = DEFAULT_MAX_FRAME_BYTES;

/** Default retry maximum for `this.retry()` when the task has no retry policy (Celery's). */
export const DEFAULT_EXPLICIT_RETRIES = 3;

export class TaskCompletion {
  constructor(
    private readonly store: ResultStore,
    private readonly publisher: Publisher,
    private readonly workflows: WorkflowExecutor,
    private readonly codec: Codec,
    private readonly isRevoked: (id: string) => boolean,
    private readonly log: (message: string) => void,
  ) {}

  /**
   * Store the value (unless the result is ignored outside a workflow) and
   * advance the workflow. Synchronous when the store is: this is the hot path.
   * A workflow advances only from a step whose SUCCESS is recorded: a step
   * revoked while it ran (the revocation was recorded first) stops it there.
   */
  succeeded(message: TaskMessage, value: unknown, encoded: Uint8Array | undefined): Completed | Promise<Completed> {
    const stored =
      encoded === undefined
        ? undefined
        : this.store.complete(message.id, message.task, { state: "SUCCESS", value: encoded });
    if (stored instanceof Promise) return this.afterStore(stored, message, value, encoded as Uint8Array);
    if (stored === false) return this.refused(message, value);
    return message.workflow === undefined ? "succeeded" : this.advance(message, value);
  }

  /**
   * `succeeded` for a task outside a workflow, its delivery acknowledged by
   * the broker along with the outcome (`ResultStore.completeAndAck`);
   * `acked` is called once it is. Undefined, having done nothing, when the
   * store cannot: then call `succeeded`.
   */
  succeededAcking(
    message: TaskMessage,
    value: unknown,
    encoded: Uint8Array,
    ack: OutcomeAck,
    acked: () => void,
  ): Promise<Completed> | undefined {
    const stored = this.store.completeAndAck?.(message.id, message.task, { state: "SUCCESS", value: encoded }, ack);
    if (stored === undefined) return undefined;
    return this.afterStore(
      stored.then((first) => {
        acked();
        return first;
      }),
      message,
      value,
      encoded,
    );
  }

  private async afterStore(
    stored: Promise<boolean>,
    message: TaskMessage,
    value: unknown,
    encoded: Uint8Array,
  ): Promise<Completed> {
    let first: boolean;
    try {
      first = await stored;
    } catch (error) {
      // A node whose frame limit is below MAX_RESULT_BYTES refuses the value before it is sent: fail the task once,
      // with the sizes, rather than leave it STARTED and its message redelivered to fail the same way again.
      if (!(error instanceof FrameTooLargeError)) throw error;
      return this.failed(
        message,
        toErrorInfo(
          new ResultTooLargeError({ task: message.task, id: message.id, size: encoded.byteLength, max: error.max }),
        ),
      );
    }
    if (!first) return this.refused(message, value);
    return message.workflow === undefined ? "succeeded" : this.advance(message, value);
  }

  private async advance(message: TaskMessage, value: unknown): Promise<"succeeded"> {
    await this.workflows.succeeded(message.workflow as string, message.node as number, value);
    return "succeeded";
  }

  /** The store refused the value: a final state was recorded first. */
  private async refused(message: TaskMessage, value: unknown): Promise<Completed> {
    const record = await this.store.get(message.id);
    if (record?.state === "SUCCESS") {
      // Recorded by an earlier delivery of this message: finish what it may not have, as a redelivery does.
      if (message.workflow !== undefined)
        await this.workflows.succeeded(message.workflow, message.node as number, value);
      return "succeeded";
    }
    const state = record?.state ?? "forgotten";
    const why = state === "REVOKED" ? "after it was revoked" : `after it was recorded ${state}`;
    const stops = message.workflow === undefined ? "" : ", and its workflow stops there";
    this.log(`task '${message.task}' (${message.id}) ran to completion ${why}: its result is discarded${stops}`);
    return state === "REVOKED" ? "revoked" : "failed";
  }

  /** Retry if the error and the policy allow it; otherwise fail for good. */
  async failedOrRetry(
    message: TaskMessage,
    options: CallOptions,
    priority: number,
    error: unknown,
    definition: TaskDefinition,
  ): Promise<Completed> {
    const policy = options.retry;
    const requested = error instanceof RetryRequest ? error : undefined;
    const retryOn = definition.options.retry?.retryOn;
    const wanted = requested !== undefined || (policy !== undefined && (retryOn === undefined || retryOn(error)));
    const max = requested !== undefined ? (requested.max ?? policy?.max ?? DEFAULT_EXPLICIT_RETRIES) : policy?.max;
    // A revoked task is not retried: the broker would discard the retry and leave the result at RETRY for ever.
    if (wanted && this.isRevoked(message.id)) return this.revoked(message);
    if (wanted && mayRetry(policy, message.retries, max)) {
      const countdown = requested?.countdown ?? retryDelay(policy ?? { max: max ?? 0 }, message.retries);
      await this.publisher.publish({
        ...message,
        retries: message.retries + 1,
        options: { ...message.options, countdown, priority },
      });
      return "retried";
    }
    const cause =
      requested === undefined
        ? error
        : (requested.cause ??
          new MaxRetriesExceededError({ task: message.task, id: message.id, retries: message.retries }));
    return this.failed(message, toErrorInfo(cause));
  }

  async failed(message: TaskMessage, error: RemoteErrorInfo): Promise<"failed"> {
    const first = await this.store.complete(message.id, message.task, { state: "FAILURE", error });
    if (first && message.workflow !== undefined)
      await this.workflows.failed(message.workflow, message.node as number, error);
    return "failed";
  }

  async revoked(message: TaskMessage, expired = false): Promise<"revoked"> {
    const error = toErrorInfo(
      new TaskRevokedError({ id: message.id, task: message.task, ...(expired ? { expired } : {}) }),
    );
    const first = await this.store.complete(message.id, message.task, { state: "REVOKED", error });
    if (first && message.workflow !== undefined)
      await this.workflows.failed(message.workflow, message.node as number, error);
    return "revoked";
  }

  /**
   * A redelivered message whose task already finished (its worker died
   * between storing the result and acknowledging): do not run it again, only
   * finish what may not have been done, advancing its workflow.
   */
  async resume(message: TaskMessage, record: ResultRecord): Promise<void> {
    if (message.workflow === undefined) return;
    if (record.state === "SUCCESS") {
      const value = record.value === undefined ? undefined : this.codec.decode(record.value);
      await this.workflows.succeeded(message.workflow, message.node as number, value);
    } else if (record.error !== undefined) {
      await this.workflows.failed(message.workflow, message.node as number, record.error);
    }
  }
}
