/**
 * `createTestApp`: an app on the embedded broker with a virtual clock, a
 * worker already consuming, a record of what was sent, stubs for handlers,
 * and `drain()` to run everything ready now. `clock.advance("1h")` runs what
 * falls due in that hour, in order, in a few milliseconds of real time.
 */
import type { Effect } from "effect";
import type { Clock, ClockTimer } from "../../broker/clock.ts";
import { Codec } from "../../broker/codec.ts";
import { EmbeddedBroker } from "../../broker/embedded/embedded-broker.ts";
import type { Canvas, Dispatcher } from "../../dsl/canvas.ts";
import type { CallOptions } from "../../dsl/options.ts";
import type { AsyncResult } from "../../dsl/result.ts";
import { createApp, type App } from "../app.ts";
import { DEFAULT_QUEUE } from "../task-message.ts";
import { Task, type TaskContext } from "../task.ts";
import type { Worker, WorkerOptions } from "../worker/worker.ts";
import { AppActivity } from "./app-activity.ts";
import type { Duration } from "./duration.ts";
import { RecordingTransport } from "./recording-transport.ts";
import { SentLog, assertNotSent, assertSent, type SentTask, type TaskRef } from "./sent-tasks.ts";
import { TaskStubs, type Stub } from "./task-stubs.ts";
import { DrainTimeoutError, EagerRunError, ReentrantDrainError } from "./testing-errors.ts";
import { VirtualClock } from "./virtual-clock.ts";

/**
 * How a test app is made: the tasks to register (your app module's
 * definitions), eager mode, where its clock starts, the worker's options.
 *
 * @example
 * const t = await createTestApp({ tasks: (app) => defineTasks(app), eager: true });
 */
export interface TestAppOptions<T> {
  /**
   * Register the app's tasks: your app module written as a function of the
   * app (the same function your production code calls with `createApp()`).
   * What it returns is `t.tasks`.
   */
  readonly tasks?: (app: App) => T;
  /** Run each send inline, like Celery's `task_always_eager`: `delay` resolves once the task (retries included) has finished. Default false. */
  readonly eager?: boolean;
  /** Where the virtual clock starts (epoch ms or a Date). Default: the real time at creation. */
  readonly startAt?: number | Date;
  /** The worker the test app starts; `false` for none (make your own with `t.app.worker()`). Default: concurrency 8 on queue "celery". */
  readonly worker?: WorkerOptions | false;
  /** Real milliseconds `drain()`, `advance()` and eager sends wait for running tasks before failing with DrainTimeoutError. Default 5,000. */
  readonly settleTimeout?: number;
  /**
   * Real milliseconds `advance()` and eager sends let handlers that are still
   * running (and nothing else) go on before taking them to wait for the
   * virtual clock (a time limit, a timer of their own) and moving time on. Default 25.
   */
  readonly patience?: number;
  /** Where the runtime reports messages it rejected or requeued. Default console.error. */
  readonly log?: (message: string) => void;
}

/**
 * A test app's clock: a Clock others can read and schedule on, that moves only when the test advances it.
 *
 * @example
 * const t = await createTestApp({ startAt: Date.UTC(2030, 0, 1) });
 * t.clock.now(); // 1893456000000
 * await t.clock.advance("1h");
 */
export class TestClock implements Clock {
  constructor(
    /** The virtual clock underneath. */
    readonly virtual: VirtualClock,
    private readonly advanceWith: (duration: Duration) => Promise<void>,
  ) {}

  readonly now = (): number => this.virtual.now();
  readonly setTimeout = (callback: () => void, ms: number): ClockTimer => this.virtual.setTimeout(callback, ms);
  readonly clearTimeout = (timer: ClockTimer): void => this.virtual.clearTimeout(timer);

  /**
   * Move time forward by `duration` ("1h", "10m", "1h30m" or ms): every timer
   * that falls due on the way fires at its own time, earliest first, and the
   * work it starts (deliveries, retries, workflow steps) runs before the next.
   *
   * @example
   * await add.applyAsync([1, 2], { countdown: 3_600_000 });
   * await t.clock.advance("1h");
   */
  advance(duration: Duration): Promise<void> {
    return this.advanceWith(duration);
  }

  /** Timers waiting on the virtual clock. */
  get pending(): number {
    return this.virtual.pending;
  }
}

type HandlerOf<A extends readonly unknown[], R> = (
  this: TaskContext,
  ...args: A
) => R | Promise<R> | Effect.Effect<R, unknown, never>;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const realMs = (option: string, value: number | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `createTestApp: '${option}' must be a number of real milliseconds (0 or more), got ${String(value)}`,
    );
  }
  return value;
};

/**
 * A test app. `app` is an ordinary App (register tasks on it, or pass your
 * app's task definitions as `tasks`); its broker is embedded and its clock
 * virtual.
 *
 * @example
 * const t = await createTestApp();
 * const add = t.app.task("add", (x: number, y: number) => x + y);
 * const r = await add.applyAsync([2, 2], { countdown: 60_000 });
 * await t.clock.advance("1m");
 * await r.get(); // 4
 */
export class TestApp<T = undefined> {
  readonly app: App;
  readonly tasks: T;
  readonly clock: TestClock;
  private readonly virtual: VirtualClock;
  private readonly sentLog: SentLog;
  private readonly stubs = new TaskStubs();
  private readonly activity: AppActivity;
  private readonly settleTimeout: number;
  private readonly patience: number;
  /** Drains, advances and eager runs take turns: two at once would both move the clock. */
  private turn: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** @internal Use createTestApp. */
  constructor(options: TestAppOptions<T>) {
    this.settleTimeout = realMs("settleTimeout", options.settleTimeout, 5_000);
    this.patience = realMs("patience", options.patience, 25);
    if (options.tasks !== undefined && typeof options.tasks !== "function") {
      throw new TypeError(
        `createTestApp: 'tasks' must be a function of the app that registers its tasks, got ${typeof options.tasks}`,
      );
    }
    const virtual = (this.virtual = new VirtualClock(options.startAt ?? Date.now()));
    this.sentLog = new SentLog(new Codec(), virtual.now);
    // The app is given the TestClock, so that app.clock handed on (to a scheduler, say) advances with the drains between timers.
    const clock = (this.clock = new TestClock(virtual, (duration) =>
      this.exclusive("clock.advance()", () => virtual.advance(duration, this.settleOrWait)),
    ));
    const broker = new RecordingTransport(new EmbeddedBroker({ clock }), (envelope) => this.sentLog.record(envelope));
    this.activity = new AppActivity(broker, virtual, this.stubs);
    const app = createApp({ broker, clock, ...(options.log !== undefined ? { log: options.log } : {}) });
    this.app = this.wrap(app, options.eager === true);
    this.tasks = (options.tasks?.(this.app) ?? undefined) as T;
  }

  /** @internal */
  async start(workerOptions: WorkerOptions | false | undefined): Promise<void> {
    if (workerOptions !== false) await this.app.worker(workerOptions).start();
  }

  /** Every task message sent so far, in order: by the test, by workflows advancing, and retries. The array grows as more is sent. */
  get sent(): readonly SentTask[] {
    return this.sentLog.all;
  }

  /** The messages of one task, in order. */
  sentOf(task: TaskRef): SentTask[] {
    return this.sentLog.of(task);
  }

  /**
   * Fail (an AssertionError, which node:test, vitest and jest report) unless
   * `task` was sent, with `args` if given (compared deeply, as decoded); returns the message.
   *
   * @example
   * await signup.delay("ada@example.com");
   * t.assertSent(sendWelcome, ["ada@example.com"]);
   */
  assertSent(task: TaskRef, args?: readonly unknown[]): SentTask {
    return assertSent(this.sentLog.all, task, args);
  }

  /** Fail if `task` was sent (with `args` if given). */
  assertNotSent(task: TaskRef, args?: readonly unknown[]): void {
    assertNotSent(this.sentLog.all, task, args);
  }

  /** Forget what was sent so far. */
  clearSent(): void {
    this.sentLog.clear();
  }

  /**
   * Run `handler` instead of the task's own until `restore()` (or the end of
   * the test app). Messages still go through the broker and the codec, so an
   * argument or result that cannot be sent fails as it would in production.
   *
   * @example
   * const charge = t.stub(chargeCard, () => ({ ok: true }));
   * await (await checkout.delay(order)).get();
   * assert.deepEqual(charge.calls, [[order.card, 42]]);
   */
  stub<A extends readonly unknown[], R>(task: Task<A, R>, handler: HandlerOf<NoInfer<A>, NoInfer<R>>): Stub<A>;
  stub(task: string, handler: HandlerOf<any[], unknown>): Stub<unknown[]>;
  stub(task: Task<any, any> | string, handler: HandlerOf<any[], unknown>): Stub<any> {
    return this.stubs.stub(typeof task === "string" ? task : task.name, handler);
  }

  /**
   * Run until nothing is ready, running or due at the current virtual time
   * (what waits for the clock stays waiting: advance it). Fails with
   * DrainTimeoutError, naming what still runs, if tasks are still busy after
   * `timeout` real ms (a task waiting on real I/O, or tasks sending tasks for ever).
   */
  drain(options: { readonly timeout?: number } = {}): Promise<void> {
    return this.exclusive("drain()", () => this.settle(options.timeout ?? this.settleTimeout));
  }

  /**
   * Stop the workers, drop every stub, close the broker. Tasks still running
   * are abandoned at once unless `timeout` (real ms) gives them time: a task
   * stuck on something outside the app must not hang the test's cleanup.
   * Safe to call twice.
   */
  async close(options: { readonly timeout?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stubs.restoreAll();
    await this.app.close({ timeout: options.timeout ?? 0 });
  }

  /** Settle, or stop waiting once only running handlers are left and they have had `patience` ms: time may then move on. */
  private readonly settleOrWait = (): Promise<void> => this.settle(this.settleTimeout, this.patience);

  /**
   * Run what is ready at the current time until nothing is (idle on two turns
   * in a row: a turn lets every promise and immediate callback queued by the
   * last one run). With `patienceMs`, handlers left running alone that long are
   * taken to be waiting for the virtual clock.
   */
  private async settle(timeoutMs: number, patienceMs?: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let idleTurns = 0;
    let onlyRunningSince: number | undefined;
    for (;;) {
      await nextTurn();
      this.virtual.runDue();
      const state = await this.activity.state();
      if (state === "idle") {
        if (++idleTurns >= 2) return;
      } else idleTurns = 0;
      if (state === "running" && patienceMs !== undefined) {
        onlyRunningSince ??= Date.now();
        if (Date.now() - onlyRunningSince >= patienceMs) return;
      } else onlyRunningSince = undefined;
      if (Date.now() > deadline) throw new DrainTimeoutError(timeoutMs, await this.activity.describe());
    }
  }

  private exclusive<R>(operation: string, run: () => Promise<R>): Promise<R> {
    if (this.stubs.insideTask) return Promise.reject(new ReentrantDrainError(operation));
    const result = this.turn.then(run);
    this.turn = result.catch(() => undefined);
    return result;
  }

  /** Eager mode: run until `result` is ready, moving the clock to each next timer while nothing else is left. */
  private runEagerly<R>(result: AsyncResult<R>): Promise<AsyncResult<R>> {
    // Sent from inside a task (as in a worker): the run in progress takes it from here.
    if (this.stubs.insideTask) return Promise.resolve(result);
    return this.exclusive("an eager send", async () => {
      const deadline = Date.now() + this.settleTimeout;
      await this.settleOrWait();
      while (!(await result.ready())) {
        if ((await result.state()) === "UNKNOWN") {
          // A task that ignores its result leaves no record: it is done once no message of it waits for its eta.
          const eta = this.sentLog.latest(result.id)?.eta;
          if (eta === undefined || eta <= this.virtual.now()) return result;
          await this.virtual.advance(eta - this.virtual.now(), this.settleOrWait);
          continue;
        }
        const next = this.virtual.nextAt();
        if (next === undefined) throw new EagerRunError(result.id, await result.state(), [...this.activity.queues]);
        if (Date.now() > deadline) throw new DrainTimeoutError(this.settleTimeout, await this.activity.describe());
        await this.virtual.advance(Math.max(0, next - this.virtual.now()), this.settleOrWait);
      }
      return result;
    });
  }

  /** The App handed to the test: tasks registered behind stand-ins, workers tracked, and in eager mode sends that run inline. */
  private wrap(app: App, eager: boolean): App {
    const { stubs, activity } = this;
    let dispatcher: Dispatcher | undefined;
    const eagerSender = {
      send: <R>(task: string, args: readonly unknown[], options: CallOptions | undefined) =>
        app.sendTask<R>(task, args, options).then((result) => this.runEagerly(result)),
      sendMany: async <R>(
        task: string,
        argsList: readonly (readonly unknown[])[],
        options: CallOptions | undefined,
      ): Promise<AsyncResult<R>[]> => {
        const sent = await app.sendMany<R>(task, argsList, options);
        for (const result of sent) await this.runEagerly(result);
        return sent;
      },
    };
    const eagerDispatcher: Dispatcher = {
      dispatch: <R>(canvas: Canvas<any, R>, options?: CallOptions) =>
        (dispatcher as Dispatcher).dispatch(canvas, options).then((result) => this.runEagerly(result)),
    };
    return {
      ...app,
      task(name, handler, taskOptions) {
        const task = app.task(name, stubs.standIn(name, handler), taskOptions);
        if (!eager) return task;
        dispatcher ??= (task as Task<any, any>).s().dispatcher;
        return new Task(task.definition, eagerSender, eagerDispatcher);
      },
      worker(workerOptions) {
        const worker: Worker = app.worker(workerOptions);
        activity.workers.push(worker);
        for (const queue of workerOptions?.queues ?? [DEFAULT_QUEUE]) activity.queues.add(queue);
        return worker;
      },
      sendTask: eager ? eagerSender.send : app.sendTask,
      sendMany: eager ? eagerSender.sendMany : app.sendMany,
    };
  }
}

/**
 * An app for tests: embedded broker, virtual clock, a worker consuming
 * "celery", and the toolkit around it. Close it when the test ends.
 *
 * @example
 * import { createTestApp } from "celerity/testing";
 *
 * const t = await createTestApp();
 * const add = t.app.task("add", (x: number, y: number) => x + y);
 * const result = await add.applyAsync([2, 2], { countdown: 3_600_000 });
 * await t.clock.advance("1h");
 * assert.equal(await result.get(), 4);
 * await t.close();
 */
export const createTestApp = async <T = undefined>(options: TestAppOptions<T> = {}): Promise<TestApp<T>> => {
  const t = new TestApp<T>(options);
  try {
    await t.start(options.worker);
  } catch (error) {
    await t.close();
    throw error;
  }
  return t;
};
