// A pool of threads or child processes, each with the app module loaded,
// each running one task at a time. The worker stays on its own event loop
// (consuming, heartbeats, lease renewals, acknowledgement); the pool only
// runs handlers. A hard time limit, a terminate-revoke or a cold shutdown
// stops the thread or child running the task and starts a fresh one; so do
// `maxTasksPerChild` and `maxMemoryPerChild`, between tasks.
import type { Codec } from "../../broker/codec.ts";
import { TimeLimitExceeded, WorkerError } from "../errors.ts";
import type { Invocation, InvocationOutcome } from "../worker/task-invocation.ts";
import { spawnProcess, spawnThread, type ChildLink } from "./child-link.ts";
import { fromCrossing } from "./crossing-error.ts";
import { PoolStartError, WorkerLostError } from "./pool-errors.ts";
import type { FromChild } from "./pool-protocol.ts";

/** One task for the pool to run: its message body, its time limits, and what to do with its value. */
export interface PoolCall {
  readonly id: string;
  readonly task: string;
  readonly target?: string;
  readonly retries: number;
  /** The message body as delivered. */
  readonly body: Uint8Array;
  readonly softTimeLimit?: number;
  readonly timeLimit?: number;
  /** Encode the value for the result store. */
  readonly encode: boolean;
  /** Decode the encoded value here too (a workflow's next step needs it). */
  readonly needsValue: boolean;
}

export interface ChildPoolOptions {
  readonly kind: "threads" | "process";
  readonly appModule: string;
  readonly worker: string;
  readonly size: number;
  readonly maxTasksPerChild: number;
  readonly maxMemoryPerChild: number;
  readonly codec: Codec;
  readonly log: (message: string) => void;
  /** Record a running task's progress report, sent by its thread or child. */
  readonly progress?: (id: string, task: string, retries: number, info: Uint8Array) => void;
}

/**
 * A threads or process pool's counts, in `worker.stats().children`.
 *
 * @example
 * const { size, busy, recycled, killed, lost } = worker.stats().children ?? {};
 */
export interface PoolStats {
  readonly kind: "threads" | "process";
  /** Threads or children the pool keeps (busy, idle or starting). */
  readonly size: number;
  readonly busy: number;
  /** Replaced after maxTasksPerChild or maxMemoryPerChild. */
  readonly recycled: number;
  /** Stopped with their task (hard time limit, terminate, cold shutdown). */
  readonly killed: number;
  /** Ended on their own while running a task. */
  readonly lost: number;
}

interface Child {
  readonly link: ChildLink;
  state: "starting" | "idle" | "busy" | "retiring";
  running: PooledInvocation | undefined;
  tasksRun: number;
  /** It loaded the app module (a child that ends before this failed to start). */
  ready: boolean;
  readonly exited: Promise<void>;
  markExited(): void;
}

/** Spawning again after a child failed to load waits this long, so a broken module does not spin. */
const RESPAWN_BACKOFF_MS = 1_000;

/** A call on the pool: its outcome to come, and the means to give up on it (which stops its thread or child). */
export class PooledInvocation implements Invocation {
  readonly outcome: Promise<InvocationOutcome>;
  settled = false;
  child: Child | undefined;
  timer: NodeJS.Timeout | undefined;
  private resolve!: (outcome: InvocationOutcome) => void;

  constructor(
    readonly call: PoolCall,
    readonly number: number,
    private readonly pool: ChildPool,
  ) {
    this.outcome = new Promise((resolve) => (this.resolve = resolve));
  }

  abandon(reason: unknown): void {
    this.pool.abandon(this, reason);
  }

  settle(outcome: InvocationOutcome): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    this.resolve(outcome);
    return true;
  }
}

export class ChildPool {
  private readonly children = new Set<Child>();
  private readonly queue: PooledInvocation[] = [];
  private readonly byNumber = new Map<number, PooledInvocation>();
  private target: number;
  private calls = 0;
  private closing = false;
  private respawnTimer: NodeJS.Timeout | undefined;
  private counts = { recycled: 0, killed: 0, lost: 0 };
  /** While start() waits: how to tell it a child failed to load. */
  private startFailed: ((error: PoolStartError) => void) | undefined;
  private readyWaiters: (() => void)[] = [];

  constructor(private readonly options: ChildPoolOptions) {
    this.target = options.size;
  }

  /** Start the pool's threads or children; resolves once each has loaded the app module. */
  async start(): Promise<void> {
    const failed = new Promise<never>((_, reject) => (this.startFailed = reject));
    for (let i = 0; i < this.target; i++) this.spawn();
    try {
      await Promise.race([failed, this.allReady()]);
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      this.startFailed = undefined;
    }
  }

  /** Run one call on the next free thread or child. */
  run(call: PoolCall): PooledInvocation {
    const invocation = new PooledInvocation(call, ++this.calls, this);
    this.queue.push(invocation);
    this.dispatch();
    return invocation;
  }

  /** Threads or children the pool keeps. */
  get size(): number {
    return this.target;
  }

  /** Keep `size` threads or children: start more now, or retire idle ones now and busy ones after their task. */
  resize(size: number): void {
    if (!Number.isInteger(size) || size < 1)
      throw new WorkerError({
        worker: this.options.worker,
        reason: `a pool needs at least one child, asked for ${size}`,
      });
    this.target = size;
    this.balance();
  }

  /** Replace every thread or child (idle ones now, busy ones after their task), so each loads the app module afresh. */
  restart(): void {
    for (const child of this.children) {
      if (child.state === "busy") child.state = "retiring";
      else if (child.state === "idle") this.retire(child);
    }
    this.balance();
  }

  stats(): PoolStats {
    let busy = 0;
    for (const child of this.children) if (child.running !== undefined) busy++;
    return { kind: this.options.kind, size: this.target, busy, ...this.counts };
  }

  /** Give up on `invocation`: settle it with `reason` and stop the thread or child running it. */
  abandon(invocation: PooledInvocation, reason: unknown): void {
    if (!invocation.settle({ ok: false, error: reason })) return;
    this.byNumber.delete(invocation.number);
    const queued = this.queue.indexOf(invocation);
    if (queued >= 0) this.queue.splice(queued, 1);
    const child = invocation.child;
    if (child !== undefined && child.running === invocation) {
      child.running = undefined;
      child.state = "retiring";
      this.counts.killed++;
      child.link.kill();
    }
  }

  /** Stop every thread or child now; calls still queued or running fail with a WorkerError. Resolves once all have ended. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.respawnTimer);
    const stopped = new WorkerError({
      worker: this.options.worker,
      reason: "the pool closed before the task finished",
    });
    for (const invocation of [...this.queue, ...this.byNumber.values()])
      invocation.settle({ ok: false, error: stopped });
    this.queue.length = 0;
    this.byNumber.clear();
    const exits = [...this.children].map((child) => child.exited);
    for (const child of this.children) child.link.kill();
    await Promise.all(exits);
  }

  private allReady(): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        for (const child of this.children) if (child.state === "starting") return void this.readyWaiters.push(check);
        resolve();
      };
      check();
    });
  }

  private spawn(): void {
    const events = {
      message: (message: FromChild) => this.onMessage(child, message),
      exit: (code: number | null, signal: string | undefined) => this.onExit(child, code, signal),
    };
    const { kind, appModule } = this.options;
    const link = kind === "threads" ? spawnThread(appModule, events) : spawnProcess(appModule, events);
    let markExited!: () => void;
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    const child: Child = { link, state: "starting", running: undefined, tasksRun: 0, ready: false, exited, markExited };
    this.children.add(child);
    link.send({ type: "init", appModule: this.options.appModule, worker: this.options.worker });
  }

  private onMessage(child: Child, message: FromChild): void {
    switch (message.type) {
      case "ready":
        child.ready = true;
        if (child.state === "retiring") return this.retire(child);
        child.state = "idle";
        this.wakeReadyWaiters();
        this.balance();
        return this.dispatch();
      case "load-failed": {
        const error = new PoolStartError({
          worker: this.options.worker,
          module: this.options.appModule,
          reason: message.reason,
        });
        child.state = "retiring";
        child.link.kill();
        if (this.startFailed !== undefined) return this.startFailed(error);
        this.options.log(`${error.message}; trying again in ${RESPAWN_BACKOFF_MS} ms`);
        return;
      }
      case "done":
        return this.onDone(child, message);
      case "progress":
        return this.options.progress?.(message.id, message.task, message.retries, message.info);
    }
  }

  private onDone(child: Child, message: Extract<FromChild, { type: "done" }>): void {
    const invocation = this.byNumber.get(message.call);
    this.byNumber.delete(message.call);
    if (child.running === invocation) child.running = undefined;
    child.tasksRun++;
    if (invocation !== undefined) invocation.settle(this.outcomeOf(invocation.call, message));
    const { maxTasksPerChild, maxMemoryPerChild } = this.options;
    if (child.state === "retiring") this.retire(child);
    else if (child.tasksRun >= maxTasksPerChild || message.memory > maxMemoryPerChild) {
      const why =
        child.tasksRun >= maxTasksPerChild
          ? `it ran ${child.tasksRun} tasks (maxTasksPerChild)`
          : `it uses ${Math.round(message.memory / 2 ** 20)} MB, over maxMemoryPerChild ${Math.round(maxMemoryPerChild / 2 ** 20)} MB`;
      this.options.log(`${this.options.worker}: replacing ${child.link.label}: ${why}`);
      this.counts.recycled++;
      this.retire(child);
    } else child.state = "idle";
    this.balance();
    this.dispatch();
  }

  private outcomeOf(call: PoolCall, message: Extract<FromChild, { type: "done" }>): InvocationOutcome {
    if (!message.ok) return { ok: false, error: fromCrossing(message.error) };
    const { encoded } = message;
    if (encoded === undefined) return { ok: true, value: undefined };
    try {
      return { ok: true, value: call.needsValue ? this.options.codec.decode(encoded) : undefined, encoded };
    } catch (error) {
      return { ok: false, error };
    }
  }

  private onExit(child: Child, code: number | null, signal: string | undefined): void {
    this.children.delete(child);
    child.markExited();
    const invocation = child.running;
    if (invocation !== undefined) {
      this.byNumber.delete(invocation.number);
      this.counts.lost++;
      const error = new WorkerLostError({
        task: invocation.call.task,
        id: invocation.call.id,
        child: child.link.label,
        exitCode: code,
        ...(signal !== undefined ? { signal } : {}),
      });
      this.options.log(`${this.options.worker}: ${error.message}`);
      invocation.settle({ ok: false, error });
    }
    if (this.closing) return;
    if (!child.ready) {
      // It never got ready (its module failed to load, or it crashed loading): wait before trying again.
      this.wakeReadyWaiters();
      this.respawnTimer ??= setTimeout(() => {
        this.respawnTimer = undefined;
        this.balance();
      }, RESPAWN_BACKOFF_MS);
      return;
    }
    this.balance();
  }

  /** Start or retire threads or children until the pool keeps its target. */
  private balance(): void {
    if (this.closing) return;
    let kept = 0;
    for (const child of this.children) if (child.state !== "retiring") kept++;
    if (kept < this.target && this.respawnTimer === undefined) {
      for (; kept < this.target; kept++) this.spawn();
    } else if (kept > this.target) {
      for (const child of this.children) {
        if (kept <= this.target) break;
        if (child.state === "idle" || child.state === "starting") {
          this.retire(child);
          kept--;
        }
      }
      for (const child of this.children) {
        if (kept <= this.target) break;
        if (child.state === "busy") {
          child.state = "retiring";
          kept--;
        }
      }
    }
  }

  private retire(child: Child): void {
    child.state = "retiring";
    child.link.send({ type: "exit" });
  }

  private dispatch(): void {
    if (this.queue.length === 0) return;
    for (const child of this.children) {
      if (child.state !== "idle") continue;
      const invocation = this.queue.shift();
      if (invocation === undefined) return;
      const { call } = invocation;
      child.state = "busy";
      child.running = invocation;
      invocation.child = child;
      this.byNumber.set(invocation.number, invocation);
      if (call.timeLimit !== undefined) {
        const limitMs = call.timeLimit;
        invocation.timer = setTimeout(
          () => this.abandon(invocation, new TimeLimitExceeded({ task: call.task, limitMs })),
          limitMs,
        );
      }
      child.link.send({
        type: "run",
        call: invocation.number,
        id: call.id,
        task: call.task,
        ...(call.target !== undefined ? { target: call.target } : {}),
        retries: call.retries,
        // A view into a larger buffer (a network read) would carry the whole buffer across.
        body:
          call.body.byteOffset === 0 && call.body.byteLength === call.body.buffer.byteLength
            ? call.body
            : call.body.slice(),
        ...(call.softTimeLimit !== undefined ? { softTimeLimit: call.softTimeLimit } : {}),
        encode: call.encode,
      });
    }
  }

  private wakeReadyWaiters(): void {
    const waiters = this.readyWaiters.splice(0);
    for (const waiter of waiters) waiter();
  }
}
