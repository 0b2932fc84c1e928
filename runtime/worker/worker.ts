import type { Delivery } from "../../broker/envelope.ts";
import type { Consumer } from "../../broker/transport.ts";
import { systemClock } from "../../broker/clock.ts";
import { TaskRevokedError, WorkerError, WorkflowNotFoundError, toErrorInfo } from "../errors.ts";
import { RateGate } from "../rate-limit/rate-gate.ts";
import type { RateLimiting } from "../rate-limit/app-rate-limits.ts";
import { DEFAULT_QUEUE } from "../task-message.ts";
import { TaskRunner, type RunnerEnvironment, type Settlement } from "./task-runner.ts";

/**
 * A worker consumes queues and runs tasks, at most `concurrency` at a time.
 * Acknowledgement is late by default: a message is acked only after its
 * result is stored and its workflow advanced, so a worker that dies or stops
 * mid-task leaves the message to be redelivered, never dropped.
 *
 * @example
 * await app.worker({ name: "images-1", queues: ["images", "celery"], concurrency: 16 }).start();
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
  /**
   * On a broker node: how long each delivery is leased to this worker. The
   * worker renews the leases of what it holds while its process is alive, so
   * a long task keeps its message; a worker that stops renewing (its event
   * loop blocked that long) loses it to another worker. Default 30 s.
   */
  readonly leaseMs?: number;
}

/**
 * How long `worker.stop()` and `app.close()` wait for running tasks.
 *
 * @example
 * await worker.stop({ timeout: 10_000 });
 */
export interface StopOptions {
  /** Wait at most this many ms for running tasks; then abort them and return their messages to the queue. Default: wait for them. */
  readonly timeout?: number;
}

/**
 * A worker's counts since it started: tasks running and waiting for a slot, and how the finished ones ended.
 *
 * @example
 * const { running, succeeded, failed } = worker.stats();
 */
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
export type WorkerEnvironment = RunnerEnvironment & { readonly rateLimits?: RateLimiting };

interface Pending {
  readonly delivery: Delivery;
  readonly consumer: Consumer;
  seen?: boolean;
  marked?: boolean;
  started?: boolean;
}

let workerCount = 0;

/** A held message shows RECEIVED once it has waited through a full sweep interval. */
const RECEIVED_SWEEP_MS = 10;

/**
 * A worker in this process: consumes its queues and runs tasks, at most
 * `concurrency` at a time, acknowledging each message once its result is
 * stored (see WorkerOptions). Made by `app.worker()`.
 *
 * @example
 * const worker = app.worker({ concurrency: 8 });
 * await worker.start();
 * // ...
 * await worker.stop({ timeout: 10_000 });
 */
export class Worker {
  readonly name: string;
  private readonly queues: readonly string[];
  private readonly concurrency: number;
  private readonly prefetch: number;
  private readonly leaseMs: number | undefined;
  private consumers: Consumer[] = [];
  private readonly waiting: Pending[] = [];
  private waitingHead = 0;
  private runningCount = 0;
  private state: "idle" | "running" | "stopping" | "stopped" = "idle";
  private drained: (() => void) | undefined;
  private sweepScheduled = false;
  /** True while `next()` is starting held messages. */
  private starting = false;
  private readonly runner: TaskRunner;
  /** Holds deliveries of rate-limited tasks until a token is theirs (outside the concurrency count). */
  private readonly gate: RateGate | undefined;
  private unsubscribeRevoke: (() => void) | undefined;
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
    this.leaseMs = options.leaseMs;
    this.runner = new TaskRunner(env, {
      name: this.name,
      settle: (consumer, delivery, how) => this.settle(consumer, delivery, how),
      count: (outcome) => this.counts[outcome]++,
    });
    if (this.queues.length === 0) throw new WorkerError({ worker: this.name, reason: "no queues to consume" });
    const limits = env.rateLimits;
    this.gate =
      limits &&
      new RateGate(
        { table: limits.table, global: limits.global, maxHeld: Math.max(1, Math.floor(this.prefetch / 2)), clock: env.clock ?? systemClock },
        {
          name: this.name,
          transport: env.transport,
          codec: env.codec,
          log: env.log,
          freeSlots: () => (this.state === "running" ? Math.max(0, this.concurrency - this.runningCount) : 0),
          start: (delivery, consumer) => this.run(delivery, consumer),
          admit: (delivery, consumer) => this.receive(delivery, consumer),
          settle: (consumer, delivery, how) => this.settle(consumer, delivery, how),
        },
      );
  }

  /** Start consuming. Resolves once every queue is being consumed. */
  async start(): Promise<void> {
    if (this.state !== "idle") throw new WorkerError({ worker: this.name, reason: `cannot start a worker that is ${this.state}` });
    this.state = "running";
    this.unsubscribeRevoke = this.env.transport.onRevoke((id, revocation) => {
      if (revocation.terminate) this.terminate(id);
    });
    try {
      await this.consumeAll();
      this.env.hooks?.emit("workerReady", { worker: this.name });
    } catch (error) {
      // Nothing half-started: cancel what did start and let start() be called again.
      const started = this.consumers.splice(0);
      await Promise.all(started.map((consumer) => consumer.cancel().catch(() => {})));
      this.unsubscribeRevoke?.();
      this.state = "idle";
      throw error;
    }
  }

  private async consumeAll(): Promise<void> {
    for (const queue of this.queues) {
      // A transport may deliver before consume() resolves; hold those until the consumer is known.
      let consumer: Consumer | undefined;
      const early: Delivery[] = [];
      consumer = await this.env.transport.consume(
        queue,
        (delivery) => (consumer === undefined ? early.push(delivery) : this.receive(delivery, consumer)),
        this.leaseMs === undefined ? { prefetch: this.prefetch } : { prefetch: this.prefetch, leaseMs: this.leaseMs },
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
    this.gate?.stop();
    if (this.runningCount > 0) {
      const drained = new Promise<void>((resolve) => (this.drained = resolve));
      if (options.timeout === undefined) await drained;
      else {
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), options.timeout)));
        if ((await Promise.race([drained, timedOut])) === "timeout") {
          const reason = new WorkerError({ worker: this.name, reason: "stopped before the task finished; its message goes back to the queue" });
          for (const { invocation } of this.runner.running.values()) invocation.abandon(reason);
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
    this.env.hooks?.emit("workerShutdown", { worker: this.name });
  }

  stats(): WorkerStats {
    return { running: this.runningCount, waiting: this.waiting.length - this.waitingHead, ...this.counts };
  }

  private receive(delivery: Delivery, consumer: Consumer): void {
    if (this.gate?.hold(delivery, consumer)) return;
    if (this.state === "running" && this.runningCount < this.concurrency) return this.run(delivery, consumer);
    this.waiting.push({ delivery, consumer });
    this.scheduleSweep();
  }

  /**
   * Messages held for a free slot for a while show RECEIVED. Swept every
   * RECEIVED_SWEEP_MS rather than written per message: on a busy worker most
   * held messages start within moments, and a store write for each cost an
   * eighth of the dispatch path (and two requests per task over a network).
   */
  private markReceived(): void {
    this.sweepScheduled = false;
    let unmarked = false;
    for (let i = this.waitingHead; i < this.waiting.length; i++) {
      const pending = this.waiting[i];
      if (pending.marked) continue;
      // Marked on the second sweep it is still waiting in: most held messages start within a turn or two,
      // and over a network each mark is a read and a write on the result store.
      if (!pending.seen) {
        pending.seen = true;
        unmarked = true;
        continue;
      }
      pending.marked = true;
      const { id, headers } = pending.delivery.envelope;
      const task = headers.task;
      if (typeof task !== "string") continue;
      // Only a task whose result is kept has a PENDING record to advance (one that ignores its result must not get one).
      Promise.resolve(this.env.store.get(id))
        .then((record) => (record?.state === "PENDING" && !pending.started ? this.env.store.setState(id, task, "RECEIVED") : undefined))
        .catch((error: unknown) => this.env.log(`${this.name}: ${toErrorInfo(error).message}`));
    }
    if (unmarked) this.scheduleSweep();
  }

  /** Start held messages while slots are free. Tasks that finish synchronously free their slot inside the loop, which goes on (no recursion). */
  private scheduleSweep(): void {
    if (this.sweepScheduled) return;
    this.sweepScheduled = true;
    (this.env.clock ?? systemClock).setTimeout(() => this.markReceived(), RECEIVED_SWEEP_MS).unref();
  }

  private next(): void {
    if (this.state !== "running" || this.starting) return;
    this.starting = true;
    try {
      while (this.runningCount < this.concurrency && this.waitingHead < this.waiting.length) {
        const pending = this.waiting[this.waitingHead++];
        pending.started = true;
        if (this.waitingHead === this.waiting.length) {
          this.waiting.length = 0;
          this.waitingHead = 0;
        }
        this.run(pending.delivery, pending.consumer);
      }
      this.gate?.pump();
    } finally {
      this.starting = false;
    }
  }

  private run(delivery: Delivery, consumer: Consumer): void {
    this.runningCount++;
    let pending: void | Promise<void>;
    try {
      pending = this.runner.run(delivery, consumer);
    } catch (error) {
      this.failedToComplete(delivery, consumer, error);
      return this.finished();
    }
    if (pending === undefined) return this.finished();
    pending.then(
      () => this.finished(),
      (error: unknown) => {
        this.failedToComplete(delivery, consumer, error);
        this.finished();
      },
    );
  }

  private failedToComplete(delivery: Delivery, consumer: Consumer, error: unknown): void {
    if (error instanceof WorkflowNotFoundError) {
      // Redelivering cannot bring the graph back: keep the task's own result, say what is lost, and move on.
      this.env.log(`${this.name}: task ${delivery.envelope.id} finished, but ${error.message}`);
      this.settle(consumer, delivery, "ack");
      return;
    }
    this.env.log(`${this.name}: message ${delivery.envelope.id} could not be completed and goes back to the queue: ${toErrorInfo(error).message}`);
    this.settle(consumer, delivery, "requeue");
  }

  private finished(): void {
    this.runningCount--;
    if (this.state === "stopping" && this.runningCount === 0) this.drained?.();
    else if (!this.starting) this.next();
  }

  private settle(consumer: Consumer, delivery: Delivery, how: Settlement): void {
    if (!this.consumers.includes(consumer)) return; // cancelled: the broker has already taken the message back
    if (how === "ack") consumer.ack(delivery.deliveryTag);
    else if (how === "requeue") consumer.nack(delivery.deliveryTag, { requeue: true });
    else consumer.nack(delivery.deliveryTag, { requeue: false, reason: how.reject });
  }

  private terminate(id: string): void {
    const running = this.runner.running.get(id);
    running?.invocation.abandon(new TaskRevokedError({ id, task: running.task }));
  }
}
