// A worker consumes queues and runs tasks, at most `concurrency` at a time.
// Acknowledgement is late by default: a message is acked only after its
// result is stored and its workflow advanced, so a worker that dies or stops
// mid-task leaves the message to be redelivered, never dropped.
import { hostname } from "node:os";
import type { Delivery } from "../../broker/envelope.ts";
import type { Consumer } from "../../broker/transport.ts";
import { systemClock } from "../../broker/clock.ts";
import { TaskRevokedError, WorkerError, WorkflowNotFoundError, toErrorInfo } from "../errors.ts";
import { RateGate } from "../rate-limit/rate-gate.ts";
import { DEFAULT_QUEUE } from "../task-message.ts";
import { TaskRunner, type Running, type Settlement } from "./task-runner.ts";
import { TaskEvents } from "../events/task-events.ts";
import { WorkerPresence } from "../events/worker-presence.ts";
import { resolvePoolOptions } from "../pool/pool-options.ts";
import { WorkerPooling } from "../pool/worker-pooling.ts";
import type {
  StopOptions,
  WorkerControlHandle,
  WorkerEnvironment,
  WorkerOptions,
  WorkerStats,
} from "./worker-options.ts";

export type {
  StopOptions,
  WorkerControlHandle,
  WorkerEnvironment,
  WorkerOptions,
  WorkerStats,
} from "./worker-options.ts";

interface Pending {
  readonly delivery: Delivery;
  readonly consumer: Consumer;
  seen?: boolean;
  marked?: boolean;
  started?: boolean;
}

let workerCount = 0;

const defaultName = (): string => `${process.pid}${++workerCount === 1 ? "" : `-${workerCount}`}@${hostname()}`;

/** Longest wait before a message whose completion failed goes back to its queue. */
const MAX_COMPLETION_BACKOFF_MS = 2_000;

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
  private queues: readonly string[];
  private concurrency: number;
  private readonly prefetch: number;
  private readonly leaseMs: number | undefined;
  private consumers: Consumer[] = [];
  private readonly waiting: Pending[] = [];
  private waitingHead = 0;
  private runningCount = 0;
  /**
   * Runs whose handler has returned and whose outcome is still being recorded
   * (a remote store's answer): out of their slot, at most `prefetch` of them.
   */
  private settlingCount = 0;
  private state: "idle" | "running" | "stopping" | "stopped" = "idle";
  private drained: (() => void) | undefined;
  private stopping: Promise<void> | undefined;
  /** Ends the wait for running tasks early: set while stopping. */
  private hurry: ((afterMs: number) => void) | undefined;
  /** The pool's threads or children, autoscaling, the async pool's block watch. */
  private readonly pooling: WorkerPooling;
  private sweepScheduled = false;
  /** True while `next()` is starting held messages. */
  private starting = false;
  private readonly runner: TaskRunner;
  /** Holds deliveries of rate-limited tasks until a token is theirs (outside the concurrency count). */
  private readonly gate: RateGate | undefined;
  private unsubscribeRevoke: (() => void) | undefined;
  private counts = { succeeded: 0, failed: 0, retried: 0, revoked: 0, rejected: 0 };
  /** Completions that failed in a row (see run): the next one waits longer before its message goes back. */
  private completionFailures = 0;
  private readonly eventsAtStart: boolean;
  private readonly controlled: boolean;
  private presence: WorkerPresence | undefined;
  private control: WorkerControlHandle | undefined;
  private markDone!: () => void;
  /** Epoch ms when the worker started consuming (0 before). */
  startedAt = 0;
  /** Resolves once the worker has stopped, however it was stopped (a signal, `stop()`, or a shutdown by remote control). */
  readonly done: Promise<void> = new Promise((resolve) => (this.markDone = resolve));

  constructor(
    private readonly env: WorkerEnvironment,
    options: WorkerOptions = {},
  ) {
    this.name = options.name ?? defaultName();
    this.eventsAtStart = options.events === true;
    this.controlled = options.control !== false;
    this.queues = options.queues ?? [DEFAULT_QUEUE];
    const pooling = resolvePoolOptions(this.name, options, env.appModule);
    this.concurrency = pooling.autoscale?.min ?? options.concurrency ?? 8;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new WorkerError({
        worker: this.name,
        reason: `concurrency must be a positive integer, got ${options.concurrency}`,
      });
    }
    this.prefetch = options.prefetch ?? (pooling.autoscale?.max ?? this.concurrency) * 4;
    this.leaseMs = options.leaseMs;
    this.pooling = new WorkerPooling(
      pooling,
      this.concurrency,
      {
        name: this.name,
        backlog: () => this.waiting.length - this.waitingHead,
        busy: () => this.runningCount,
        concurrency: () => this.concurrency,
        resize: (size) => this.resize(size),
        running: () => this.runner.running,
        lastFinished: () => ({ task: this.runner.lastFinished, count: this.runner.finishedCount }),
      },
      env,
    );
    const { pool } = this.pooling;
    this.runner = new TaskRunner(env, {
      name: this.name,
      settle: (consumer, delivery, how) => this.settle(consumer, delivery, how),
      settleAside: (delivery, consumer, settling) => this.settleAside(delivery, consumer, settling),
      count: (outcome) => this.counts[outcome]++,
      ...(pool !== undefined ? { pool } : {}),
      blockWarnMs: this.pooling.blockWarnMs,
      blocked: (task, id, ms) => this.pooling.blocked(task, id, ms),
    });
    if (this.queues.length === 0) throw new WorkerError({ worker: this.name, reason: "no queues to consume" });
    const limits = env.rateLimits;
    this.gate =
      limits &&
      new RateGate(
        {
          table: limits.table,
          global: limits.global,
          maxHeld: Math.max(1, Math.floor(this.prefetch / 2)),
          clock: env.clock ?? systemClock,
          ...(env.rateLimitKeyDigest !== undefined ? { keyDigest: env.rateLimitKeyDigest } : {}),
        },
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
    if (this.state !== "idle")
      throw new WorkerError({ worker: this.name, reason: `cannot start a worker that is ${this.state}` });
    this.state = "running";
    try {
      await this.pooling.start();
    } catch (error) {
      this.state = "idle";
      throw error;
    }
    this.unsubscribeRevoke = this.env.transport.onRevoke((id, revocation) => {
      if (revocation.terminate) this.terminate(id);
    });
    try {
      await this.consumeAll();
      this.startedAt = Date.now();
      if (this.eventsAtStart) this.enableEvents();
      if (this.controlled && this.env.startControl !== undefined) this.control = await this.env.startControl(this);
      this.env.hooks?.emit("workerReady", { worker: this.name });
    } catch (error) {
      // Nothing half-started: cancel what did start and let start() be called again.
      const started = this.consumers.splice(0);
      await Promise.all(started.map((consumer) => consumer.cancel().catch(() => {})));
      this.unsubscribeRevoke?.();
      this.disableEvents(false);
      await this.pooling.close();
      this.state = "idle";
      throw error;
    }
    this.pooling.consuming();
  }

  private async consumeAll(): Promise<void> {
    for (const queue of this.queues) await this.consumeQueue(queue);
  }

  private async consumeQueue(queue: string): Promise<void> {
    // A transport may deliver before consume() resolves; hold those until the consumer is known.
    let consumer: Consumer | undefined;
    const early: Delivery[] = [];
    consumer = await this.env.transport.consume(
      queue,
      (delivery) => (consumer === undefined ? early.push(delivery) : this.receive(delivery, consumer)),
      this.leaseMs === undefined
        ? { prefetch: this.prefetch, marksStarted: true }
        : { prefetch: this.prefetch, leaseMs: this.leaseMs, marksStarted: true },
    );
    this.consumers.push(consumer);
    for (const delivery of early) this.receive(delivery, consumer);
  }

  /**
   * Stop gracefully: take no new task, let running ones finish (up to
   * `timeout`), then hand every message not acknowledged back to the broker.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    if (this.state === "stopping") {
      if (options.timeout !== undefined) this.hurry?.(options.timeout);
      return this.stopping;
    }
    if (this.state !== "running") return;
    this.state = "stopping";
    this.stopping = this.shutdown(options);
    return this.stopping;
  }

  private async shutdown(options: StopOptions): Promise<void> {
    this.pooling.stopping();
    this.gate?.stop();
    // A broker that lost this worker took back every message it held: finishing those tasks can settle nothing.
    const unsubscribeLost = this.env.transport.onConnectionLost?.(() =>
      this.abandonRunning(
        "lost its broker connection while stopping; the broker has returned the message to the queue",
      ),
    );
    if (this.runningCount > 0 || this.settlingCount > 0) {
      const drained = new Promise<void>((resolve) => (this.drained = resolve));
      let timer: NodeJS.Timeout | undefined;
      let deadline = Infinity;
      const timedOut = new Promise<"timeout">((resolve) => {
        this.hurry = (afterMs) => {
          if (Date.now() + afterMs >= deadline) return;
          deadline = Date.now() + afterMs;
          clearTimeout(timer);
          timer = setTimeout(() => resolve("timeout"), afterMs);
        };
      });
      if (options.timeout !== undefined) this.hurry?.(options.timeout);
      if ((await Promise.race([drained, timedOut])) === "timeout") {
        const reason = new WorkerError({
          worker: this.name,
          reason: "stopped before the task finished; its message goes back to the queue",
        });
        for (const { invocation } of this.runner.running.values()) invocation.abandon(reason);
      }
      clearTimeout(timer);
      this.hurry = undefined;
    }
    unsubscribeLost?.();
    this.unsubscribeRevoke?.();
    const consumers = this.consumers;
    this.consumers = [];
    await Promise.all(consumers.map((consumer) => consumer.cancel()));
    this.waiting.length = 0;
    this.waitingHead = 0;
    const control = this.control;
    this.control = undefined;
    await control
      ?.close()
      .catch((error: unknown) => this.env.log(`${this.name}: closing remote control: ${toErrorInfo(error).message}`));
    this.disableEvents();
    await this.pooling.close();
    this.state = "stopped";
    this.env.hooks?.emit("workerShutdown", { worker: this.name });
    this.markDone();
  }

  /** The queues consumed now. */
  get consumedQueues(): readonly string[] {
    return this.queues;
  }

  /** Unacknowledged messages held per queue at most. */
  get prefetchCount(): number {
    return this.prefetch;
  }

  /** Tasks run at once now (see `resize`). */
  get poolSize(): number {
    return this.concurrency;
  }

  /** Whether task and worker events are being sent. */
  get sendsEvents(): boolean {
    return this.presence !== undefined;
  }

  /** Start sending task and worker events (worker-online first). A no-op when already sending, or without an app's dispatcher. */
  enableEvents(): void {
    if (this.presence !== undefined || this.env.events === undefined) return;
    const dispatcher = this.env.events();
    this.runner.events = new TaskEvents(dispatcher, this.name, this.env.codec);
    this.presence = new WorkerPresence(dispatcher, this.name, () => ({
      active: this.runningCount,
      processed: this.processed(),
    }));
    this.presence.online();
  }

  /** Stop sending events (worker-offline last). */
  disableEvents(sayOffline = true): void {
    const presence = this.presence;
    this.presence = undefined;
    this.runner.events = undefined;
    if (sayOffline) presence?.offline();
  }

  private processed(): number {
    const { succeeded, failed, retried, revoked, rejected } = this.counts;
    return succeeded + failed + retried + revoked + rejected;
  }

  /** Start consuming `queue` too. Resolves false when it was consumed already. */
  async addConsumer(queue: string): Promise<boolean> {
    if (this.state !== "running")
      throw new WorkerError({ worker: this.name, reason: `cannot add a consumer to a worker that is ${this.state}` });
    if (typeof queue !== "string" || queue.length === 0)
      throw new WorkerError({ worker: this.name, reason: "a queue name is a non-empty string" });
    if (this.queues.includes(queue)) return false;
    await this.consumeQueue(queue);
    this.queues = [...this.queues, queue];
    return true;
  }

  /** Stop consuming `queue` (what this worker holds of it goes back to it). Resolves false when it was not consumed. */
  async cancelConsumer(queue: string): Promise<boolean> {
    const cancelled = this.consumers.filter((consumer) => consumer.queue === queue);
    if (cancelled.length === 0) return false;
    this.consumers = this.consumers.filter((consumer) => consumer.queue !== queue);
    this.queues = this.queues.filter((name) => name !== queue);
    // Held messages of that queue can no longer be settled: the broker has them back.
    const kept = this.waiting.slice(this.waitingHead).filter((pending) => pending.consumer.queue !== queue);
    this.waiting.length = 0;
    this.waitingHead = 0;
    this.waiting.push(...kept);
    await Promise.all(cancelled.map((consumer) => consumer.cancel()));
    return true;
  }

  /**
   * Change `task`'s time limits on this worker (ms, as the task options
   * `softTimeLimit` and `timeLimit`; undefined for none), winning over those its messages carry.
   */
  setTimeLimits(task: string, soft: number | undefined, hard: number | undefined): void {
    for (const [name, value] of [
      ["soft", soft],
      ["hard", hard],
    ] as const) {
      if (value !== undefined && !(typeof value === "number" && value > 0)) {
        throw new WorkerError({
          worker: this.name,
          reason: `a ${name} time limit must be a positive number of ms, got ${String(value)}`,
        });
      }
    }
    this.runner.timeLimits.set(task, { soft, hard });
  }

  /** The tasks running now, each with its message and start time. */
  runningTasks(): IterableIterator<Running> {
    return this.runner.running.values();
  }

  /** Deliveries held and not started: waiting for a free slot, and waiting for a rate-limit token. */
  heldDeliveries(): { readonly waiting: readonly Delivery[]; readonly rateLimited: readonly Delivery[] } {
    return {
      waiting: this.waiting.slice(this.waitingHead).map((pending) => pending.delivery),
      rateLimited: this.gate === undefined ? [] : [...this.gate.heldDeliveries()],
    };
  }

  private abandonRunning(reason: string): void {
    const error = new WorkerError({ worker: this.name, reason });
    for (const { invocation } of this.runner.running.values()) invocation.abandon(error);
  }

  stats(): WorkerStats {
    const stats = {
      running: this.runningCount,
      waiting: this.waiting.length - this.waitingHead,
      ...this.counts,
      concurrency: this.concurrency,
      pool: this.pooling.kind,
      ...(this.env.signedRefusals !== undefined ? { refused: this.env.signedRefusals() } : {}),
    };
    const children = this.pooling.stats();
    return children === undefined ? stats : { ...stats, children };
  }

  /**
   * Run `n` more tasks at once (on a threads or process pool, start `n` more
   * threads or children). Returns the new concurrency.
   *
   * @example
   * worker.poolGrow(2);
   */
  poolGrow(n = 1): number {
    this.resize(this.concurrency + this.checkedStep(n));
    return this.concurrency;
  }

  /**
   * Run `n` fewer tasks at once, never fewer than one (idle threads or children
   * end now, busy ones after their task). Returns the new concurrency.
   */
  poolShrink(n = 1): number {
    this.resize(Math.max(1, this.concurrency - this.checkedStep(n)));
    return this.concurrency;
  }

  private checkedStep(n: number): number {
    if (!Number.isInteger(n) || n < 1)
      throw new WorkerError({ worker: this.name, reason: `a pool grows or shrinks by a positive integer, got ${n}` });
    return n;
  }

  private resize(size: number): void {
    this.concurrency = size;
    this.pooling.resize(size);
    if (!this.starting) this.next();
  }

  private receive(delivery: Delivery, consumer: Consumer): void {
    this.runner.events?.received(delivery);
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
        .then((record) =>
          record?.state === "PENDING" && !pending.started ? this.env.store.setState(id, task, "RECEIVED") : undefined,
        )
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
    // Only what was begun counts against a message if this process dies: a poison task is dead-lettered alone.
    consumer.markStarted?.(delivery.deliveryTag);
    let pending: void | Promise<void>;
    try {
      pending = this.runner.run(delivery, consumer);
    } catch (error) {
      this.failedToComplete(delivery, consumer, error);
      return this.finished();
    }
    if (pending === undefined) return this.finished();
    this.whenSettled(pending, delivery, consumer, this.onFinished);
  }

  /**
   * Take a run whose handler has returned out of its slot while its outcome is
   * recorded and its message settled (`settling`), so that the next task
   * starts without waiting for a remote store's answer. False (the run keeps
   * its slot) once `prefetch` runs are settling: what bounds them when
   * messages are acknowledged early.
   */
  private settleAside(delivery: Delivery, consumer: Consumer, settling: Promise<void>): boolean {
    if (this.settlingCount >= this.prefetch) return false;
    this.settlingCount++;
    this.whenSettled(settling, delivery, consumer, this.onSettled);
    return true;
  }

  private whenSettled(pending: Promise<void>, delivery: Delivery, consumer: Consumer, done: () => void): void {
    pending.then(
      () => {
        this.completionFailures = 0;
        done();
      },
      (error: unknown) => {
        // The store or broker cannot take outcomes (a full disk, say): wait a while before the
        // message goes back, rather than spin on its redelivery.
        const backoffMs = Math.min(MAX_COMPLETION_BACKOFF_MS, 50 * 2 ** Math.min(16, this.completionFailures++));
        setTimeout(() => {
          this.failedToComplete(delivery, consumer, error);
          done();
        }, backoffMs);
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
    this.env.log(
      `${this.name}: message ${delivery.envelope.id} could not be completed and goes back to the queue: ${toErrorInfo(error).message}`,
    );
    this.settle(consumer, delivery, "requeue");
  }

  private finished(): void {
    this.runningCount--;
    if (this.state === "stopping") this.drainedIfIdle();
    else if (!this.starting) this.next();
  }

  private readonly onFinished = () => this.finished();

  private readonly onSettled = () => {
    this.settlingCount--;
    if (this.state === "stopping") this.drainedIfIdle();
  };

  private drainedIfIdle(): void {
    if (this.runningCount === 0 && this.settlingCount === 0) this.drained?.();
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
