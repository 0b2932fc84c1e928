// Runs one delivery from receipt to acknowledgement: decode, refuse what
// cannot run (malformed, unknown task, revoked, expired), call the handler,
// record the outcome, settle with the broker.
//
// The common case (a handler that returns a value, an in-memory result store)
// completes synchronously, with no promise made: this path is what bounds a
// worker's throughput. Anything asynchronous continues in `finishLater`.
import { Effect } from "effect";
import { CodecError, type Codec } from "../../broker/codec.ts";
import type { Delivery } from "../../broker/envelope.ts";
import type { Consumer, Transport } from "../../broker/transport.ts";
import { systemClock, type Clock } from "../../broker/clock.ts";
import { MAP_TASK, STARMAP_TASK } from "../../dsl/combinators.ts";
import { mergeOptions, type CallOptions } from "../../dsl/options.ts";
import { READY_STATES } from "../../dsl/result.ts";
import { ResultTooLargeError, TaskRevokedError, UnknownTaskError, WorkerError, toErrorInfo } from "../errors.ts";
import type { ResultStore } from "../results/result-store.ts";
import { MAX_RESULT_BYTES, type Completed, type TaskCompletion } from "./task-completion.ts";
import { type AsyncInvocation, invoke, type Invocation, type InvocationOutcome } from "./task-invocation.ts";
import { fromEnvelope, type TaskMessage } from "../task-message.ts";
import type { TaskContext, TaskDefinition } from "../task.ts";
import { ProgressRecorder } from "../task-progress.ts";
import type { Hooks } from "../hooks.ts";
import type { TaskEventSink } from "../events/task-events.ts";
import type { PoolCall } from "../pool/child-pool.ts";
import { type RunTrace, traceRun } from "../tracing/task-tracing.ts";
import { context } from "@opentelemetry/api";

/**
 * What the runner works with: the app's transport, result store, codec, tasks, completion, log, clock and hooks.
 */
export interface RunnerEnvironment {
  readonly transport: Transport;
  readonly store: ResultStore;
  readonly codec: Codec;
  readonly completion: TaskCompletion;
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  readonly log: (message: string) => void;
  /** The clock for expiry and time limits. Default the system clock. */
  readonly clock?: Clock;
  /** The app's hooks around execution (runtime/hooks.ts). */
  readonly hooks?: Hooks;
  /**
   * The once-only claim of a message marked `claimOnce`: true for the first
   * copy of its id, false for every later one. Default: the result store's
   * `claim`.
   */
  readonly claimOnce?: (id: string) => Promise<boolean>;
}

/** How a delivery is settled with the broker. */
export type Settlement = "ack" | "requeue" | { readonly reject: string };

/** What the runner needs from its worker. */
export interface RunnerHost {
  readonly name: string;
  settle(consumer: Consumer, delivery: Delivery, how: Settlement): void;
  /**
   * Told that a run's handler has returned while its outcome is still being
   * recorded (`settling`, which the host now watches for failure): true if
   * the host freed the run's slot, false if the run is to keep it until
   * `settling` ends.
   */
  settleAside?(delivery: Delivery, consumer: Consumer, settling: Promise<void>): boolean;
  count(outcome: Completed | "rejected"): void;
  /** Where handlers run when not on this event loop (a thread or process pool). */
  readonly pool?: TaskPool;
  /** Told when a handler ran synchronously on this event loop for longer than `blockWarnMs`. */
  readonly blockWarnMs?: number;
  blocked?(task: string, id: string, ms: number): void;
}

/** What the runner hands a handler call to when it runs in a pool. */
export interface TaskPool {
  run(call: PoolCall): Invocation;
}

export interface Running {
  readonly task: string;
  readonly invocation: Invocation;
  readonly message: TaskMessage;
  readonly queue: string;
  /** Epoch ms. */
  readonly startedAt: number;
}

export class TaskRunner {
  /** Tasks whose handler is still running asynchronously, by task id (for terminate and shutdown). */
  readonly running = new Map<string, Running>();
  /** The last task whose handler finished asynchronously, and how many have (for the event-loop watch). */
  lastFinished: TaskMessage | undefined;
  finishedCount = 0;
  private readonly mappers = new Map<string, TaskDefinition>();
  /** Where task events go while the worker sends them; undefined (nothing to do) when it does not. */
  events: TaskEventSink | undefined = undefined;
  /** Time limits set at run time by remote control, by task name; they win over the message's. */
  readonly timeLimits = new Map<string, { readonly soft: number | undefined; readonly hard: number | undefined }>();
  private readonly clock: Clock;
  private readonly progress: ProgressRecorder;

  constructor(
    private readonly env: RunnerEnvironment,
    private readonly host: RunnerHost,
  ) {
    this.clock = env.clock ?? systemClock;
    this.progress = new ProgressRecorder(env.store, env.codec);
  }

  /** Run `delivery`; returns a promise only when something asynchronous is left to do. */
  run(delivery: Delivery, consumer: Consumer): void | Promise<void> {
    const { env } = this;
    let message: TaskMessage;
    try {
      message = fromEnvelope(delivery.envelope, env.codec);
    } catch (error) {
      return this.rejectMalformed(delivery, consumer, error);
    }
    if (delivery.redelivered) return this.runRedelivered(message, delivery, consumer);
    if (message.claimOnce === true && message.retries === 0) return this.runClaimed(message, delivery, consumer);
    return this.runDelivered(message, delivery, consumer);
  }

  /** Run a message on its first delivery (or one known not to have finished). */
  private runDelivered(message: TaskMessage, delivery: Delivery, consumer: Consumer): void | Promise<void> {
    const { env, host } = this;
    const revoked = env.transport.isRevoked(message.id);
    if (revoked || (message.expires !== undefined && message.expires < this.clock.now())) {
      this.events?.skipped(message, !revoked);
      return env.completion.revoked(message, !revoked).then((completed) => {
        host.count(completed);
        host.settle(consumer, delivery, "ack");
      });
    }
    const definition = this.definitionOf(message);
    if (definition === undefined) return this.rejectUnknown(message, delivery, consumer);

    let options = mergeOptions(definition.defaults, message.options);
    if (this.timeLimits.size > 0) options = this.withTimeLimits(message.task, options);
    const acksLate = options.acksLate ?? true;
    if (!acksLate) host.settle(consumer, delivery, "ack");
    const keepsResult = !options.ignoreResult || message.workflow !== undefined;
    const started = keepsResult
      ? env.store.start(message.id, message.task, message.retries === 0 ? undefined : { retries: message.retries })
      : true;
    if (started === true)
      return this.invokeAndFinish(message, definition, options, keepsResult, acksLate, delivery, consumer);
    if (started === false) return this.skipFinished(message, acksLate, delivery, consumer);
    return started.then((ok) => {
      if (!ok) return this.skipFinished(message, acksLate, delivery, consumer);
      // Revoked while the store answered: the task has not run, and a terminate sent meanwhile found nothing to abort.
      if (env.transport.isRevoked(message.id)) return this.revokedBeforeRun(message, acksLate, delivery, consumer);
      return this.invokeAndFinish(message, definition, options, keepsResult, acksLate, delivery, consumer);
    });
  }

  private async revokedBeforeRun(
    message: TaskMessage,
    acksLate: boolean,
    delivery: Delivery,
    consumer: Consumer,
  ): Promise<void> {
    this.host.count(await this.env.completion.revoked(message));
    if (acksLate) this.host.settle(consumer, delivery, "ack");
  }

  /**
   * The store refused STARTED: the task already has a final state, most often
   * REVOKED by a revocation this worker had not yet heard of when the message
   * arrived. It does not run; its workflow is advanced from the stored state
   * (safe to repeat), as for a redelivered message.
   */
  private async skipFinished(
    message: TaskMessage,
    acksLate: boolean,
    delivery: Delivery,
    consumer: Consumer,
  ): Promise<void> {
    const record = await this.env.store.get(message.id);
    if (record !== undefined) await this.env.completion.resume(message, record);
    this.host.count(record?.state === "SUCCESS" ? "succeeded" : record?.state === "FAILURE" ? "failed" : "revoked");
    if (acksLate) this.host.settle(consumer, delivery, "ack");
  }

  private invokeAndFinish(
    message: TaskMessage,
    definition: TaskDefinition,
    options: CallOptions,
    keepsResult: boolean,
    acksLate: boolean,
    delivery: Delivery,
    consumer: Consumer,
  ): void | Promise<void> {
    const hooks = this.env.hooks;
    if (hooks?.any) hooks.emit("taskPrerun", this.hookEvent(message));
    this.events?.started(message);
    const traced = traceRun(message, delivery.envelope.headers, delivery.queue);
    const invocation =
      this.host.pool !== undefined
        ? this.invokeInPool(message, options, keepsResult, delivery)
        : traced === undefined
          ? this.invokeHere(message, definition, options, keepsResult)
          : context.with(traced.context, () => this.invokeHere(message, definition, options, keepsResult));
    if (!("outcome" in invocation))
      return this.finish(message, definition, options, keepsResult, acksLate, delivery, consumer, invocation, traced);
    this.running.set(message.id, {
      task: message.task,
      invocation,
      message,
      queue: delivery.queue,
      startedAt: this.clock.now(),
    });
    return invocation.outcome.then((outcome) => {
      this.running.delete(message.id);
      this.lastFinished = message;
      this.finishedCount++;
      return this.finish(message, definition, options, keepsResult, acksLate, delivery, consumer, outcome, traced);
    });
  }

  private invokeHere(
    message: TaskMessage,
    definition: TaskDefinition,
    options: CallOptions,
    keepsResult: boolean,
  ): InvocationOutcome | AsyncInvocation {
    const started = performance.now();
    const recorder = keepsResult ? this.progress : undefined;
    const invocation = invoke(
      definition,
      message.id,
      message.retries,
      message.args,
      options.softTimeLimit,
      options.timeLimit,
      this.clock,
      recorder,
    );
    const ms = performance.now() - started;
    if (ms > (this.host.blockWarnMs ?? Infinity)) this.host.blocked?.(message.task, message.id, ms);
    return invocation;
  }

  private invokeInPool(
    message: TaskMessage,
    options: CallOptions,
    keepsResult: boolean,
    delivery: Delivery,
  ): Invocation {
    const call: { -readonly [K in keyof PoolCall]: PoolCall[K] } = {
      id: message.id,
      task: message.task,
      retries: message.retries,
      body: delivery.envelope.body,
      encode: keepsResult,
      needsValue: message.workflow !== undefined,
    };
    if (message.target !== undefined) call.target = message.target;
    if (options.softTimeLimit !== undefined) call.softTimeLimit = options.softTimeLimit;
    if (options.timeLimit !== undefined) call.timeLimit = options.timeLimit;
    return this.host.pool!.run(call);
  }

  private finish(
    message: TaskMessage,
    definition: TaskDefinition,
    options: CallOptions,
    keepsResult: boolean,
    acksLate: boolean,
    delivery: Delivery,
    consumer: Consumer,
    outcome: InvocationOutcome,
    traced: RunTrace | undefined,
  ): void | Promise<void> {
    // Traced, what the run sends next (a retry, a workflow's next steps) is sent in the run's context.
    const completed =
      traced === undefined
        ? this.complete(message, definition, options, keepsResult, acksLate, delivery, consumer, outcome)
        : context.with(traced.context, () =>
            this.complete(message, definition, options, keepsResult, acksLate, delivery, consumer, outcome),
          );
    if (completed === undefined) {
      traced?.end("abandoned", outcome.ok ? undefined : outcome.error);
      return; // abandoned by shutdown: the broker takes a late-acked message back
    }
    if (completed instanceof Promise) {
      const settling = completed.then((done) => {
        traced?.end(done, outcome.ok ? undefined : outcome.error);
        this.events?.finished(message, done, outcome);
        if (this.env.hooks?.any) this.afterRun(message, outcome, done);
        this.settled(done, acksLate, consumer, delivery);
      });
      return this.host.settleAside?.(delivery, consumer, settling) === true ? undefined : settling;
    }
    traced?.end(completed, outcome.ok ? undefined : outcome.error);
    this.events?.finished(message, completed, outcome);
    if (this.env.hooks?.any) this.afterRun(message, outcome, completed);
    this.settled(completed, acksLate, consumer, delivery);
  }

  private hookEvent(message: TaskMessage) {
    return { id: message.id, task: message.task, args: message.args, retries: message.retries, worker: this.host.name };
  }

  /** The hooks after a run, once its outcome is recorded: success, failure or retry, then postrun. */
  private afterRun(message: TaskMessage, outcome: InvocationOutcome, completed: Completed): void {
    const hooks = this.env.hooks as Hooks;
    const event = this.hookEvent(message);
    const error = outcome.ok ? undefined : outcome.error;
    if (completed === "succeeded")
      hooks.emit("taskSuccess", { ...event, result: outcome.ok ? outcome.value : undefined });
    else if (completed === "failed") hooks.emit("taskFailure", { ...event, error });
    else if (completed === "retried") hooks.emit("taskRetry", { ...event, error });
    hooks.emit("taskPostrun", { ...event, outcome: completed });
  }

  private settled(completed: Completed, acksLate: boolean, consumer: Consumer, delivery: Delivery): void {
    this.host.count(completed);
    if (acksLate) this.host.settle(consumer, delivery, "ack");
  }

  /** Record the outcome; undefined when the task was abandoned by a stopping worker and must be left to redelivery. */
  private complete(
    message: TaskMessage,
    definition: TaskDefinition,
    options: CallOptions,
    keepsResult: boolean,
    acksLate: boolean,
    delivery: Delivery,
    consumer: Consumer,
    outcome: InvocationOutcome,
  ): Completed | Promise<Completed> | undefined {
    const { completion, codec } = this.env;
    const priority = delivery.envelope.priority;
    if (outcome.ok) {
      let encoded: Uint8Array | undefined;
      try {
        encoded = keepsResult
          ? (outcome.encoded ?? codec.encode(outcome.value, `result of task '${message.task}'`))
          : undefined;
      } catch (error) {
        if (!(error instanceof CodecError)) throw error;
        return completion.failedOrRetry(message, options, priority, error, definition);
      }
      // The same limit in one process as across processes: a value that could not reach a node's result store fails here too.
      if (encoded !== undefined && encoded.byteLength > MAX_RESULT_BYTES) {
        return completion.failed(
          message,
          toErrorInfo(
            new ResultTooLargeError({
              task: message.task,
              id: message.id,
              size: encoded.byteLength,
              max: MAX_RESULT_BYTES,
            }),
          ),
        );
      }
      if (acksLate && encoded !== undefined && message.workflow === undefined) {
        // Nothing follows the outcome but the ack: the broker may make both in one request.
        const ack = consumer.outcomeAck?.(delivery.deliveryTag);
        const acking =
          ack &&
          completion.succeededAcking(message, outcome.value, encoded, ack, () =>
            consumer.ackedWithOutcome?.(delivery.deliveryTag),
          );
        if (acking) return acking;
      }
      return completion.succeeded(message, outcome.value, encoded);
    }
    const { error } = outcome;
    if (error instanceof WorkerError) return acksLate ? undefined : completion.failed(message, toErrorInfo(error));
    if (error instanceof TaskRevokedError) return completion.revoked(message);
    return completion.failedOrRetry(message, options, priority, error, definition);
  }

  private withTimeLimits(task: string, options: CallOptions): CallOptions {
    const limits = this.timeLimits.get(task);
    return limits === undefined ? options : { ...options, softTimeLimit: limits.soft, timeLimit: limits.hard };
  }

  /**
   * A redelivered message whose task already finished (its worker died
   * between storing the result and acknowledging) is not run again.
   */
  private async runRedelivered(message: TaskMessage, delivery: Delivery, consumer: Consumer): Promise<void> {
    const record = await this.env.store.get(message.id);
    if (record !== undefined && READY_STATES.has(record.state)) {
      await this.env.completion.resume(message, record);
      this.host.settle(consumer, delivery, "ack");
      return;
    }
    await this.runDelivered(message, { ...delivery, redelivered: false }, consumer);
  }

  /**
   * A message that may have been published more than once: only the copy
   * that claims its id runs, and any other is acked without running. A
   * redelivery of the copy that claimed (its worker died) does not claim
   * again: it goes by the task's stored state, as every redelivery does.
   */
  private async runClaimed(message: TaskMessage, delivery: Delivery, consumer: Consumer): Promise<void> {
    const claimed = await (this.env.claimOnce ?? ((id: string) => this.env.store.claim(`claim-once:${id}`)))(
      message.id,
    );
    if (claimed) return this.runDelivered(message, delivery, consumer);
    this.env.log(
      `${this.host.name}: task '${message.task}' ${message.id} not run: another copy of it was claimed first (a scheduled run sent again)`,
    );
    this.host.settle(consumer, delivery, "ack");
  }

  private async rejectMalformed(delivery: Delivery, consumer: Consumer, error: unknown): Promise<void> {
    const info = toErrorInfo(error);
    this.host.count("rejected");
    this.env.log(`${this.host.name}: rejected to the dead-letter queue: ${info.message}`);
    this.events?.rejected(delivery.envelope, info.message);
    this.host.settle(consumer, delivery, { reject: info.message });
    const task = typeof delivery.envelope.headers.task === "string" ? delivery.envelope.headers.task : "(unknown)";
    await this.env.store.complete(delivery.envelope.id, task, { state: "FAILURE", error: info });
  }

  private async rejectUnknown(message: TaskMessage, delivery: Delivery, consumer: Consumer): Promise<void> {
    const error = new UnknownTaskError({
      task: message.target ?? message.task,
      queue: delivery.queue,
      worker: this.host.name,
      registered: [...this.env.tasks.keys()],
    });
    this.host.count("rejected");
    this.env.log(`${this.host.name}: ${error.message}`);
    this.events?.rejected(delivery.envelope, error.message);
    this.host.settle(consumer, delivery, { reject: error.message });
    await this.env.completion.failed(message, toErrorInfo(error));
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
export const mapperOf = (target: TaskDefinition, star: boolean): TaskDefinition => ({
  name: `${star ? STARMAP_TASK : MAP_TASK}(${target.name})`,
  options: target.options,
  defaults: target.defaults,
  minArgs: 1,
  async handler(this: TaskContext, items: unknown) {
    if (!Array.isArray(items))
      throw new TypeError(`${star ? "starmap" : "map"} of '${target.name}' expects a list, got ${typeof items}`);
    const results: unknown[] = [];
    for (const item of items) {
      if (star && !Array.isArray(item))
        throw new TypeError(`starmap of '${target.name}' expects argument tuples, got ${typeof item}`);
      let value = target.handler.apply(this, star ? (item as unknown[]) : [item]);
      if (Effect.isEffect(value))
        value = Effect.runPromise(value as Effect.Effect<unknown, unknown, never>, { signal: this.signal });
      results.push(await value);
    }
    return results;
  },
});
