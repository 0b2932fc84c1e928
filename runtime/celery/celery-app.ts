// An app that speaks Celery's protocol: task messages in Celery's task
// protocol 2 on kombu's Redis lists or RabbitMQ queues, results in Celery's Redis
// result backend. Python Celery workers serve what it sends, and its workers serve
// what Python sends. See docs/celery-interop.md.
import { randomUUID } from "node:crypto";
import { Signature, type AnyCanvas, type Canvas, type Dispatcher } from "../../dsl/canvas.ts";
import { mergeOptions, type CallOptions } from "../../dsl/options.ts";
import type { AsyncResult } from "../../dsl/result.ts";
import { systemClock, nowOf, type Clock } from "../../broker/clock.ts";
import { InvalidArgumentError } from "../../broker/errors.ts";
import { TaskRegistrationError } from "../errors.ts";
import type { HandlerResult, Leading, Suffixes } from "../task.ts";
import { CeleryCanvasError } from "./celery-errors.ts";
import { EMPTY_EMBED, type CelerySignature, type CeleryTaskMessage } from "./celery-message.ts";
import { CeleryRedis } from "./celery-redis.ts";
import type { CeleryBroker } from "./celery-broker.ts";
import { AmqpCeleryQueues } from "./celery-amqp-queues.ts";
import { RedisCeleryQueues } from "./celery-redis-queues.ts";
import { CeleryGroupResult, CeleryTaskResult } from "./celery-result.ts";
import { CeleryWorker, type CeleryHandler, type CeleryTaskContext, type CeleryWorkerOptions } from "./celery-worker.ts";

/**
 * Options of an app on Celery's protocol.
 *
 * @example
 * const options: CeleryAppOptions = { broker: "redis://127.0.0.1:6379/0", queue: "celery", resultExpires: 86_400 };
 */
export interface CeleryAppOptions {
  /** Redis, as kombu uses it (`redis://host:port/db`), or RabbitMQ (`amqp://user:password@host:port/vhost`). */
  readonly broker: string;
  /** Celery's Redis result backend: `redis://host:port/db`. Default: the broker's, when it is Redis; required with RabbitMQ. */
  readonly results?: string;
  /** The queue tasks go to and workers consume unless told otherwise: Celery's `task_default_queue`. Default "celery". */
  readonly queue?: string;
  /** On Redis: seconds after which a message taken but never acknowledged (its worker died) is put back on its queue: kombu's `visibility_timeout`. Default 3600. */
  readonly visibilityTimeout?: number;
  /** Seconds results are kept: Celery's `result_expires`. Default 86400. */
  readonly resultExpires?: number;
  readonly log?: (message: string) => void;
  readonly clock?: Clock;
}

/**
 * Per-call options on the Celery protocol: celerity's, plus keyword arguments for a Python task's `**kwargs`.
 *
 * @example
 * await greet.applyAsync(["ada"], { kwargs: { greeting: "hi" }, countdown: 5_000 });
 */
export interface CeleryCallOptions extends CallOptions {
  readonly kwargs?: Readonly<Record<string, unknown>>;
}

/**
 * A task on the Celery protocol: implemented here (`app.task`) or by another
 * process or language (`app.remoteTask`). Sent with `delay` / `applyAsync`,
 * composed with `s` / `si` in chains, groups and chords.
 *
 * @example
 * const add = app.remoteTask<(x: number, y: number) => number>("tasks.add");
 * await (await add.delay(2, 3)).get(); // 5, computed by a Python worker
 */
export class CeleryTask<A extends readonly unknown[], R> {
  constructor(
    readonly name: string,
    private readonly app: CeleryApp,
    private readonly dispatcher: Dispatcher,
  ) {}
  /** Send with positional arguments. */
  delay(...args: A): Promise<AsyncResult<R>> {
    return this.app.sendTask<R>(this.name, args);
  }
  /** Send with per-call options, keyword arguments among them (`{ kwargs: { y: 2 } }`). */
  applyAsync(args: A, options?: CeleryCallOptions): Promise<AsyncResult<R>> {
    return this.app.sendTask<R>(this.name, args, options);
  }
  /** A mutable signature: in a chain, the parent's result is prepended to these arguments. */
  s<const P extends Suffixes<Required<A>> | Suffixes<A>>(...args: P): Signature<Leading<A, P>, R> {
    return new Signature(this.name, args, {}, false, this.dispatcher);
  }
  /** An immutable signature: complete arguments; it ignores a parent's result. */
  si(...args: A): Signature<[_?: unknown], R> {
    return new Signature(this.name, args, {}, true, this.dispatcher);
  }
}

/**
 * The app on Celery's protocol, made by `createApp({ protocol: "celery", … })` or `createCeleryApp`.
 *
 * @example
 * const app = createCeleryApp({ broker: "redis://127.0.0.1:6379/0" });
 * const add = app.remoteTask<(x: number, y: number) => number>("tasks.add");
 * const shout = app.task("tasks.shout", (text: string) => text.toUpperCase());
 * await app.worker().start();
 */
export interface CeleryApp {
  readonly protocol: "celery";
  /** Register a task this process runs; `this.kwargs` holds the keyword arguments a message carried. */
  task<F extends (this: CeleryTaskContext, ...args: any[]) => unknown>(
    name: string,
    handler: F,
  ): CeleryTask<Parameters<F>, HandlerResult<ReturnType<F>>>;
  /** Declare a task another process or language implements: typed like a local task, with no handler here. */
  remoteTask<F extends (...args: any[]) => unknown>(
    name: string,
  ): CeleryTask<Parameters<F>, HandlerResult<ReturnType<F>>>;
  /** A worker running this app's tasks from its queues. */
  worker(options?: CeleryWorkerOptions): CeleryWorker;
  /** Send a task by name. */
  sendTask<R = unknown>(name: string, args: readonly unknown[], options?: CeleryCallOptions): Promise<AsyncResult<R>>;
  /** The handle on any task id in Celery's result backend. */
  result<R = unknown>(id: string): AsyncResult<R>;
  /** Stop the workers and close the connections. */
  close(): Promise<void>;
}

const REDIS_URL = /^rediss?:\/\//i;
const AMQP_URL = /^amqps?:\/\//i;

const seconds = (ms: number | undefined): number | null => (ms === undefined ? null : ms / 1000);

/**
 * Create an app on Celery's protocol over Redis.
 *
 * @example
 * const app = createCeleryApp({ broker: "redis://127.0.0.1:6379/0", queue: "celery" });
 */
export const createCeleryApp = (options: CeleryAppOptions): CeleryApp => {
  const onRedis = typeof options.broker === "string" && REDIS_URL.test(options.broker);
  const onAmqp = typeof options.broker === "string" && AMQP_URL.test(options.broker);
  if (!onRedis && !onAmqp) {
    throw new InvalidArgumentError({
      argument: "broker url",
      reason: `the celery protocol runs on Redis (redis://) or RabbitMQ (amqp://), not ${JSON.stringify(options.broker)}`,
    });
  }
  const resultsUrl = options.results ?? (onRedis ? options.broker : undefined);
  if (resultsUrl === undefined || !REDIS_URL.test(resultsUrl)) {
    throw new InvalidArgumentError({
      argument: "results url",
      reason: `the celery protocol keeps results in Celery's Redis result backend; give a redis:// url, not ${JSON.stringify(resultsUrl ?? null)}`,
    });
  }
  const log = options.log ?? ((message: string) => console.error(message));
  const now = nowOf(options.clock ?? systemClock);
  const queue = options.queue ?? "celery";
  const backend = new CeleryRedis(resultsUrl, options.resultExpires ?? 86_400);
  const broker: CeleryBroker = onAmqp
    ? new AmqpCeleryQueues(options.broker)
    : new RedisCeleryQueues(backend, log, now, options.visibilityTimeout ?? 3_600);
  const handlers = new Map<string, CeleryHandler>();
  const workers: CeleryWorker[] = [];

  const messageOf = (
    id: string,
    task: string,
    args: readonly unknown[],
    call: CeleryCallOptions,
  ): CeleryTaskMessage => {
    const at = now();
    const eta =
      call.eta !== undefined
        ? call.eta instanceof Date
          ? call.eta.getTime()
          : call.eta
        : call.countdown !== undefined
          ? at + call.countdown
          : null;
    const expires =
      call.expires === undefined ? null : call.expires instanceof Date ? call.expires.getTime() : at + call.expires;
    return {
      id,
      task,
      args,
      kwargs: call.kwargs ?? {},
      embed: EMPTY_EMBED,
      rootId: id,
      parentId: null,
      group: null,
      groupIndex: null,
      retries: 0,
      eta,
      expires,
      timeLimit: seconds(call.timeLimit),
      softTimeLimit: seconds(call.softTimeLimit),
      ignoreResult: call.ignoreResult === true,
      queue: call.queue ?? queue,
      priority: call.priority ?? 0,
    };
  };

  const signatureOf = (canvas: AnyCanvas, id: string, where: string): CelerySignature => {
    if (canvas.kind !== "signature")
      throw new CeleryCanvasError({ reason: `${where} must be a signature, not a ${canvas.kind}` });
    const call = canvas.options as CeleryCallOptions;
    const sigOptions: Record<string, unknown> = { task_id: id };
    if (call.queue !== undefined) sigOptions.queue = call.queue;
    if (call.priority !== undefined) sigOptions.priority = call.priority;
    if (call.timeLimit !== undefined) sigOptions.time_limit = call.timeLimit / 1000;
    if (call.softTimeLimit !== undefined) sigOptions.soft_time_limit = call.softTimeLimit / 1000;
    return {
      task: canvas.task,
      args: canvas.args,
      kwargs: call.kwargs ?? {},
      options: sigOptions,
      subtask_type: null,
      immutable: canvas.immutable,
    };
  };

  const signatureMessage = (
    canvas: AnyCanvas,
    id: string,
    overrides: CallOptions | undefined,
    where: string,
  ): CeleryTaskMessage => {
    if (canvas.kind !== "signature")
      throw new CeleryCanvasError({ reason: `${where} must be a signature, not a ${canvas.kind}` });
    if (canvas.callbacks.links.length > 0 || canvas.callbacks.errbacks.length > 0)
      throw new CeleryCanvasError({ reason: "link / onError are not supported on the celery protocol yet" });
    return messageOf(id, canvas.task, canvas.args, mergeOptions(canvas.options, overrides) as CeleryCallOptions);
  };

  const dispatcher: Dispatcher = {
    async dispatch<R>(canvas: Canvas<any, R>, overrides?: CallOptions): Promise<AsyncResult<R>> {
      const any = canvas as AnyCanvas;
      if (any.callbacks.links.length > 0 || any.callbacks.errbacks.length > 0)
        throw new CeleryCanvasError({ reason: "link / onError are not supported on the celery protocol yet" });
      switch (any.kind) {
        case "signature": {
          const id = randomUUID();
          await broker.publish(signatureMessage(any, id, overrides, "the signature"));
          return new CeleryTaskResult<R>(id, backend, any.task);
        }
        case "chain": {
          if (any.steps.length === 0) throw new CeleryCanvasError({ reason: "an empty chain sends nothing" });
          const ids = any.steps.map(() => randomUUID());
          const rest = any.steps
            .slice(1)
            .map((step, index) => signatureOf(step, ids[index + 1]!, `a chain's step ${index + 2}`));
          const first = signatureMessage(any.steps[0]!, ids[0]!, overrides, "a chain's first step");
          // Celery keeps the steps still to run last first: the worker pops the next one off the end.
          await broker.publish({ ...first, embed: { ...EMPTY_EMBED, chain: rest.length > 0 ? rest.reverse() : null } });
          let result: AsyncResult<unknown> | undefined;
          any.steps.forEach((step, index) => {
            result = new CeleryTaskResult(ids[index]!, backend, (step as Signature<any, any>).task, result);
          });
          return result as AsyncResult<R>;
        }
        case "group": {
          const group = randomUUID();
          const ids = any.members.map(() => randomUUID());
          const messages = any.members.map((member, index) => ({
            ...signatureMessage(member, ids[index]!, overrides, `a group's member ${index + 1}`),
            group,
            groupIndex: index,
          }));
          for (const message of messages) await broker.publish(message);
          return new CeleryGroupResult<R>(
            group,
            messages.map((message) => new CeleryTaskResult(message.id, backend, message.task)),
          );
        }
        case "chord": {
          const group = randomUUID();
          const bodyId = randomUUID();
          const body = signatureOf(any.body, bodyId, "a chord's body");
          const members = any.header.members;
          const header = new CeleryGroupResult(
            group,
            members.map(
              (member, _index) => new CeleryTaskResult(randomUUID(), backend, (member as Signature<any, any>).task),
            ),
          );
          if (members.length === 0) {
            await broker.publish({
              ...signatureMessage(any.body, bodyId, overrides, "a chord's body"),
              args: body.immutable ? body.args : [[], ...body.args],
            });
            return new CeleryTaskResult<R>(bodyId, backend, body.task, header);
          }
          const messages = members.map((member, index) => ({
            ...signatureMessage(member, header.children[index]!.id, overrides, `a chord's header member ${index + 1}`),
            group,
            groupIndex: index,
            embed: { ...EMPTY_EMBED, chord: body },
          }));
          for (let index = 0; index < messages.length; index++) {
            // Celery records the header's size just before the last member goes out.
            if (index === messages.length - 1) await backend.setChordSize(group, messages.length);
            await broker.publish(messages[index]!);
          }
          return new CeleryTaskResult<R>(bodyId, backend, body.task, header);
        }
      }
    },
  };

  const app: CeleryApp = {
    protocol: "celery",
    task(name, handler) {
      if (typeof name !== "string" || name.length === 0)
        throw new TaskRegistrationError({ task: String(name), reason: "a task needs a non-empty name" });
      if (typeof handler !== "function")
        throw new TaskRegistrationError({ task: name, reason: "the handler is not a function" });
      if (handlers.has(name))
        throw new TaskRegistrationError({ task: name, reason: "a task with this name is already registered" });
      handlers.set(name, handler as CeleryHandler);
      return new CeleryTask(name, app, dispatcher);
    },
    remoteTask(name) {
      if (typeof name !== "string" || name.length === 0)
        throw new TaskRegistrationError({ task: String(name), reason: "a task needs a non-empty name" });
      return new CeleryTask(name, app, dispatcher);
    },
    worker(workerOptions) {
      const worker = new CeleryWorker({ broker, backend, handlers, defaultQueue: queue, log, now }, workerOptions);
      workers.push(worker);
      return worker;
    },
    async sendTask<R>(name: string, args: readonly unknown[], call: CeleryCallOptions = {}): Promise<AsyncResult<R>> {
      if (!Array.isArray(args))
        throw new InvalidArgumentError({ argument: "args", reason: `the arguments of '${name}' must be a list` });
      const id = randomUUID();
      await broker.publish(messageOf(id, name, args, call));
      return new CeleryTaskResult<R>(id, backend, name);
    },
    result<R>(id: string): AsyncResult<R> {
      return new CeleryTaskResult<R>(id, backend);
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.stop()));
      await broker.close();
      await backend.close();
    },
  };
  return app;
};
