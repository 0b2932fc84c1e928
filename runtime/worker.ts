import { Effect } from "effect";
import type { Codec } from "../broker/codec.ts";
import type { Delivery } from "../broker/envelope.ts";
import type { Consumer, Transport } from "../broker/transport.ts";
import { MAP_TASK, STARMAP_TASK } from "../dsl/combinators.ts";
import { mergeOptions } from "../dsl/options.ts";
import { CodecError } from "../broker/codec.ts";
import { READY_STATES } from "../dsl/result.ts";
import { TaskRevokedError, UnknownTaskError, WorkerError, toErrorInfo } from "./errors.ts";
import { callDefaults } from "./publisher.ts";
import type { ResultStore } from "./result-store.ts";
import type { Completed, TaskCompletion } from "./task-completion.ts";
import { invoke, type Invocation } from "./task-invocation.ts";
import { DEFAULT_QUEUE, fromEnvelope, type TaskMessage } from "./task-message.ts";
import type { TaskContext, TaskDefinition } from "./task.ts";

/**
 * A worker consumes queues and runs tasks, at most `concurrency` at a time.
 * Acknowledgement is late by default: a message is acked only after its
 * result is stored and its workflow advanced, so a worker that dies or stops
 * mid-task leaves the message to be redelivered, never dropped.
 */
export interface WorkerOptions {
  /** Shown in errors and logs. Default: "worker-<n>@<pid>". */
  readonly name?: string;
  /** Queues to consume. Default ["celery"]. */
  readonly queues?: readonly string[];
  /** Tasks run at once. Default 8. */
  readonly concurrency?: number;
  /** Unacknowledged messages held per queue (running plus waiting). Default concurrency x 4. */
  readonly prefetch?: number;
}

export interface StopOptions {
  /** Wait at most this many ms for running tasks; then abort them and return their messages to the queue. Default: wait for them. */
  readonly timeout?: number;
}

export interface WorkerStats {
  readonly running: number;
  readonly waiting: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly retried: number;
  readonly revoked: number;
  readonly rejected: number;
}

/** What a worker needs from its app. */
export interface WorkerEnvironment {
  readonly transport: Transport;
  readonly store: ResultStore;
  readonly codec: Codec;
  readonly completion: TaskCompletion;
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  readonly log: (message: string) => void;
}

interface Pending {
  readonly delivery: Delivery;
  readonly consumer: Consumer;
}

let workerCount = 0;

export class Worker {
  readonly name: string;
  private readonly queues: readonly string[];
  private readonly concurrency: number;
  private readonly prefetch: number;
  private consumers: Consumer[] = [];
  private readonly waiting: Pending[] = [];
  private waitingHead = 0;
  private readonly running = new Map<string, { readonly task: string; readonly invocation: Invocation }>();
  private runningCount = 0;
  private state: "idle" | "running" | "stopping" | "stopped" = "idle";
  private drained: (() => void) | undefined;
  private unsubscribeRevoke: (() => void) | undefined;
  private readonly mappers = new Map<string, TaskDefinition>();
  private counts = { succeeded: 0, failed: 0, retried: 0, revoked: 0, rejected: 0 };

  constructor(
    private readonly env: WorkerEnvironment,
    options: WorkerOptions = {},
  ) {
    this.name = options.name ?? `worker-${++workerCount}@${process.pid}`;
    this.queues = options.queues ?? [DEFAULT_QUEUE];
    this.concurrency = options.concurrency ?? 8;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new WorkerError({ worker: this.name, reason: `concurrency must be a positive integer, got ${options.concurrency}` });
    }
    this.prefetch = options.prefetch ?? this.concurrency * 4;
    if (this.queues.length === 0) throw new WorkerError({ worker: this.name, reason: "no queues to consume" });
  }

  /** Start consuming. Resolves once every queue is being consumed. */
  async start(): Promise<void> {
    if (this.state !== "idle") throw new WorkerError({ worker: this.name, reason: `cannot start a worker that is ${this.state}` });
    this.state = "running";
    this.unsubscribeRevoke = this.env.transport.onRevoke((id, revocation) => {
      if (revocation.terminate) this.terminate(id);
    });
    for (const queue of this.queues) {
      // A transport may deliver before consume() resolves; hold those until the consumer is known.
      let consumer: Consumer | undefined;
      const early: Delivery[] = [];
      consumer = await this.env.transport.consume(
        queue,
        (delivery) => (consumer === undefined ? early.push(delivery) : this.receive(delivery, consumer)),
        { prefetch: this.prefetch },
      );
      this.consumers.push(consumer);
      for (const delivery of early) this.receive(delivery, consumer);
    }
  }

  /**
   * Stop gracefully: take no new task, let running ones finish (up to
   * `timeout`), then hand every message not acknowledged back to the broker.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    if (this.state !== "running") return;
    this.state = "stopping";
    if (this.runningCount > 0) {
      const drained = new Promise<void>((resolve) => (this.drained = resolve));
      if (options.timeout === undefined) await drained;
      else {
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), options.timeout)));
        if ((await Promise.race([drained, timedOut])) === "timeout") {
          const reason = new WorkerError({ worker: this.name, reason: "stopped before the task finished; its message goes back to the queue" });
          for (const { invocation } of this.running.values()) invocation.abandon(reason);
        }
        clearTimeout(timer);
      }
    }
    this.unsubscribeRevoke?.();
    const consumers = this.consumers;
    this.consumers = [];
    await Promise.all(consumers.map((consumer) => consumer.cancel()));
    this.waiting.length = 0;
    this.waitingHead = 0;
    this.state = "stopped";
  }

  stats(): WorkerStats {
    return { running: this.runningCount, waiting: this.waiting.length - this.waitingHead, ...this.counts };
  }

  private receive(delivery: Delivery, consumer: Consumer): void {
    if (this.state === "running" && this.runningCount < this.concurrency) return this.run(delivery, consumer);
    this.waiting.push({ delivery, consumer });
    this.markReceived(delivery);
  }

  /** A message held for a free slot shows RECEIVED (best effort: the header is read without decoding the body). */
  private markReceived(delivery: Delivery): void {
    const { task } = delivery.envelope.headers;
    if (typeof task !== "string") return;
    this.env.store.setState(delivery.envelope.id, task, "RECEIVED").catch((error) => this.env.log(`${this.name}: ${toErrorInfo(error).message}`));
  }

  private next(): void {
    if (this.state !== "running") return;
    while (this.runningCount < this.concurrency && this.waitingHead < this.waiting.length) {
      const pending = this.waiting[this.waitingHead++];
      if (this.waitingHead === this.waiting.length) {
        this.waiting.length = 0;
        this.waitingHead = 0;
      }
      this.run(pending.delivery, pending.consumer);
    }
  }

  private run(delivery: Delivery, consumer: Consumer): void {
    this.runningCount++;
    this.execute(delivery, consumer)
      .catch((error) => {
        this.env.log(`${this.name}: message ${delivery.envelope.id} could not be completed and goes back to the queue: ${toErrorInfo(error).message}`);
        this.settle(consumer, delivery, "requeue");
      })
      .finally(() => {
        this.runningCount--;
        if (this.state === "stopping" && this.runningCount === 0) this.drained?.();
        else this.next();
      });
  }

  private settle(consumer: Consumer, delivery: Delivery, how: "ack" | "requeue" | { reject: string }): void {
    if (!this.consumers.includes(consumer)) return; // cancelled: the broker has already taken the message back
    if (how === "ack") consumer.ack(delivery.deliveryTag);
    else if (how === "requeue") consumer.nack(delivery.deliveryTag, { requeue: true });
    else consumer.nack(delivery.deliveryTag, { requeue: false, reason: how.reject });
  }

  private async execute(delivery: Delivery, consumer: Consumer): Promise<void> {
    const { env } = this;
    const { completion } = env;
    let message: TaskMessage;
    try {
      message = fromEnvelope(delivery.envelope, env.codec);
    } catch (error) {
      const info = toErrorInfo(error);
      this.counts.rejected++;
      env.log(`${this.name}: rejected to the dead-letter queue: ${info.message}`);
      this.settle(consumer, delivery, { reject: info.message });
      const task = typeof delivery.envelope.headers.task === "string" ? delivery.envelope.headers.task : "(unknown)";
      await env.store.complete(delivery.envelope.id, task, { state: "FAILURE", error: info });
      return;
    }
    if (delivery.redelivered) {
      const record = await env.store.get(message.id);
      if (record !== undefined && READY_STATES.has(record.state)) {
        await completion.resume(message, record);
        this.settle(consumer, delivery, "ack");
        return;
      }
    }
    const revoked = env.transport.isRevoked(message.id);
    if (revoked || (message.expires !== undefined && message.expires < Date.now())) {
      await completion.revoked(message, !revoked);
      this.settle(consumer, delivery, "ack");
      return;
    }
    const definition = this.definitionOf(message);
    if (definition === undefined) {
      const error = new UnknownTaskError({ task: message.target ?? message.task, queue: delivery.queue, worker: this.name, registered: [...env.tasks.keys()] });
      this.counts.rejected++;
      env.log(`${this.name}: ${error.message}`);
      this.settle(consumer, delivery, { reject: error.message });
      await completion.failed(message, toErrorInfo(error));
      return;
    }
    const options = mergeOptions(callDefaults(definition.options), message.options);
    const acksLate = options.acksLate ?? true;
    if (!acksLate) this.settle(consumer, delivery, "ack");
    const keepsResult = !options.ignoreResult || message.workflow !== undefined;
    if (keepsResult) await env.store.setState(message.id, message.task, "STARTED", { retries: message.retries });

    const invocation = invoke({
      definition,
      id: message.id,
      retries: message.retries,
      args: message.args,
      ...(options.softTimeLimit !== undefined ? { softTimeLimit: options.softTimeLimit } : {}),
      ...(options.timeLimit !== undefined ? { timeLimit: options.timeLimit } : {}),
    });
    this.running.set(message.id, { task: message.task, invocation });
    const outcome = await invocation.outcome;
    this.running.delete(message.id);

    let completed: Completed;
    if (!outcome.ok && outcome.error instanceof WorkerError) {
      // Abandoned by stop(): a late-acked message goes back to the queue on cancel; an early-acked one is gone, so say so.
      if (acksLate) return;
      completed = await completion.failed(message, toErrorInfo(outcome.error));
    } else if (!outcome.ok && outcome.error instanceof TaskRevokedError) {
      completed = await completion.revoked(message);
    } else if (outcome.ok) {
      let encoded: Uint8Array | undefined;
      try {
        encoded = keepsResult ? env.codec.encode(outcome.value, `result of task '${message.task}'`) : undefined;
        completed = await completion.succeeded(message, outcome.value, encoded);
      } catch (error) {
        if (!(error instanceof CodecError)) throw error;
        completed = await completion.failedOrRetry(message, options, delivery.envelope.priority, error, definition);
      }
    } else {
      completed = await completion.failedOrRetry(message, options, delivery.envelope.priority, outcome.error, definition);
    }
    this.counts[completed]++;
    if (acksLate) this.settle(consumer, delivery, "ack");
  }

  private terminate(id: string): void {
    const running = this.running.get(id);
    running?.invocation.abandon(new TaskRevokedError({ id, task: running.task }));
  }

  private definitionOf(message: TaskMessage): TaskDefinition | undefined {
    if (message.task !== MAP_TASK && message.task !== STARMAP_TASK) return this.env.tasks.get(message.task);
    const target = message.target === undefined ? undefined : this.env.tasks.get(message.target);
    if (target === undefined) return undefined;
    const key = `${message.task}:${target.name}`;
    let mapper = this.mappers.get(key);
    if (mapper === undefined) this.mappers.set(key, (mapper = mapperOf(target, message.task === STARMAP_TASK)));
    return mapper;
  }
}

/** The built-in map / starmap: the target's handler over each item, one after another, in one task. */
const mapperOf = (target: TaskDefinition, star: boolean): TaskDefinition => ({
  name: `${star ? STARMAP_TASK : MAP_TASK}(${target.name})`,
  options: target.options,
  minArgs: 1,
  async handler(this: TaskContext, items: unknown) {
    if (!Array.isArray(items)) throw new TypeError(`${star ? "starmap" : "map"} of '${target.name}' expects a list, got ${typeof items}`);
    const results: unknown[] = [];
    for (const item of items) {
      if (star && !Array.isArray(item)) throw new TypeError(`starmap of '${target.name}' expects argument tuples, got ${typeof item}`);
      let value = target.handler.apply(this, star ? (item as unknown[]) : [item]);
      if (Effect.isEffect(value)) value = Effect.runPromise(value as Effect.Effect<unknown, unknown, never>, { signal: this.signal });
      results.push(await value);
    }
    return results;
  },
});
