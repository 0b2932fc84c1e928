import type { Codec } from "../../broker/codec.ts";
import type { CallOptions } from "../../dsl/options.ts";
import type { RemoteErrorInfo } from "../../dsl/result.ts";
import { MaxRetriesExceededError, RetryRequest, TaskRevokedError, toErrorInfo } from "../errors.ts";
import type { Publisher } from "../publisher.ts";
import type { ResultRecord, ResultStore } from "../results/result-store.ts";
import { mayRetry, retryDelay } from "./retry-policy.ts";
import type { TaskMessage } from "../task-message.ts";
import type { TaskDefinition } from "../task.ts";
import type { WorkflowExecutor } from "../workflow/workflow.ts";

/**
 * What happens after a task ran: its outcome is stored, a failure is retried
 * when its policy allows, and a workflow step advances its workflow. Every
 * method is safe to repeat for a redelivered message: the store keeps the
 * first final state and workflow joins count each step once.
 */
export type Completed = "succeeded" | "failed" | "retried" | "revoked";

/** Default retry maximum for `this.retry()` when the task has no retry policy (Celery's). */
export const DEFAULT_EXPLICIT_RETRIES = 3;

export class TaskCompletion {
  constructor(
    private readonly store: ResultStore,
    private readonly publisher: Publisher,
    private readonly workflows: WorkflowExecutor,
    private readonly codec: Codec,
    private readonly isRevoked: (id: string) => boolean,
  ) {}

  /**
   * Store the value (unless the result is ignored outside a workflow) and
   * advance the workflow. Synchronous when the store is: this is the hot path.
   */
  succeeded(message: TaskMessage, value: unknown, encoded: Uint8Array | undefined): "succeeded" | Promise<"succeeded"> {
    const stored = encoded === undefined ? undefined : this.store.complete(message.id, message.task, { state: "SUCCESS", value: encoded });
    if (message.workflow === undefined) return stored instanceof Promise ? stored.then(() => "succeeded" as const) : "succeeded";
    return this.advance(stored, message.workflow, message.node as number, value);
  }

  private async advance(stored: unknown, workflow: string, node: number, value: unknown): Promise<"succeeded"> {
    await stored;
    await this.workflows.succeeded(workflow, node, value);
    return "succeeded";
  }

  /** Retry if the error and the policy allow it; otherwise fail for good. */
  async failedOrRetry(message: TaskMessage, options: CallOptions, priority: number, error: unknown, definition: TaskDefinition): Promise<Completed> {
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
        : (requested.cause ?? new MaxRetriesExceededError({ task: message.task, id: message.id, retries: message.retries }));
    return this.failed(message, toErrorInfo(cause));
  }

  async failed(message: TaskMessage, error: RemoteErrorInfo): Promise<"failed"> {
    const first = await this.store.complete(message.id, message.task, { state: "FAILURE", error });
    if (first && message.workflow !== undefined) await this.workflows.failed(message.workflow, message.node as number, error);
    return "failed";
  }

  async revoked(message: TaskMessage, expired = false): Promise<"revoked"> {
    const error = toErrorInfo(new TaskRevokedError({ id: message.id, task: message.task, ...(expired ? { expired } : {}) }));
    const first = await this.store.complete(message.id, message.task, { state: "REVOKED", error });
    if (first && message.workflow !== undefined) await this.workflows.failed(message.workflow, message.node as number, error);
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
