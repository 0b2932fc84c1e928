// The app: a registry of tasks bound to a broker and a result store. With no options it
// runs everything in this process (an embedded broker and an in-memory result store): no
// infrastructure for tests and small apps.
import { Codec, CodecError } from "../broker/codec.ts";
import { nowOf, systemClock, type Clock } from "../broker/clock.ts";
import { connect } from "./connect.ts";
import type { Transport } from "../broker/transport.ts";
import type { AnyCanvas, Canvas, Dispatcher } from "../dsl/canvas.ts";
import { compile } from "../dsl/compile.ts";
import type { ValueRef, MessageGraph } from "../dsl/graph.ts";

import type { CallOptions, SendOptions } from "../dsl/options.ts";
import { HeldTaskResult, reserveSend, sendFacts } from "./send-reservation.ts";
import type { AsyncResult, RemoteErrorInfo, RevokeOptions } from "../dsl/result.ts";
import { GroupResult, TaskResult, WorkflowResult, type ResultContext } from "./results/async-result.ts";
import { BulkSendError, TaskRegistrationError, TaskRevokedError, toErrorInfo } from "./errors.ts";
import { checkArguments, type TaskMessage } from "./task-message.ts";
import { Publisher, callDefaults } from "./publisher.ts";
import type { ResultStore } from "./results/result-store.ts";
import { Task, type HandlerResult, type TaskContext, type TaskDefinition, type TaskOptions } from "./task.ts";
import { Worker, type StopOptions, type WorkerOptions } from "./worker/worker.ts";
import { WorkflowExecutor } from "./workflow/workflow.ts";
import { TaskCompletion } from "./worker/task-completion.ts";
import { resolveRateLimit } from "./rate-limit/rate-setting.ts";
import { rateLimitingFor, resolveChange, type RateLimitChange } from "./rate-limit/app-rate-limits.ts";
import { newTaskId } from "./task-id.ts";
import { prepareSigning, type SigningOptions } from "./signing/signing-options.ts";
import { Hooks, type HookEvents, type HookListener } from "./hooks.ts";
import { BodyFormat, TaskCodec, type BodyFormatOptions } from "./body-format.ts";
import { createCeleryApp, type CeleryApp, type CeleryAppOptions } from "./celery/celery-app.ts";
import { APP_TASKS } from "./pool/app-tasks.ts";
import { schedulingFor, type Schedules } from "./schedule/app-schedules.ts";
import type { ScheduleStore } from "./schedule/schedule-store.ts";
import { sealRunsWith } from "./schedule/sealed-runs.ts";
import type { Beat, BeatOptions } from "./schedule/beat.ts";
import type { ScheduledSignature, ScheduleOptions, When } from "./schedule/schedule-definition.ts";
import { EventDispatcher, processName } from "./events/event-dispatcher.ts";
import {
  subscribeEvents,
  type EventHandler,
  type EventSubscription,
  type SubscribeOptions,
} from "./events/event-subscription.ts";
import { taskSentWire } from "./events/task-events.ts";
import { ControlClient } from "./control/control-client.ts";
import { inspectOf, remoteControlOf, type Inspect, type RemoteControl } from "./control/app-control.ts";
import { queuesOf, type Queues } from "./control/queue-management.ts";
import { startWorkerControl } from "./control/worker-control.ts";

/**
 * How an app is set up: its protocol, broker and result store, message signing, body
 * format, events, clock and log; every field is optional.
 *
 * @example
 * const app = createApp({ broker: "celerity://127.0.0.1:5690", token: process.env.CELERITY_TOKEN });
 */
export interface AppOptions extends BodyFormatOptions {
  /** The message protocol: celerity's own (the default), or `"celery"` to share queues and results with Python Celery (docs/celery-interop.md). */
  readonly protocol?: "celerity";
  /**
   * The broker: a Transport, or a url: a broker node (`celerity://host:port`) or
   * Redis (`redis://host:port/db`), whose result store the app then uses too
   * (see runtime/connect.ts). Default: the environment variable
   * CELERITY_BROKER_URL if set, else an embedded broker in this process.
   */
  readonly broker?: Transport | string;
  /** Token for a broker node that requires one. Default: the environment variable CELERITY_TOKEN. */
  readonly token?: string;
  /**
   * A result store, or its url (`redis://…`, `postgres://…`, `memory`), instead of
   * the broker's. Default: the environment variable CELERITY_RESULTS_URL if set,
   * else the broker's (the node's, Redis's) or, with an embedded broker, in memory.
   */
  readonly results?: ResultStore | string;
  /**
   * Where schedules, their last runs and the beat lease are kept
   * (docs/periodic-tasks.md): a PostgreSQL url (`postgres://…`, `?schema=`
   * chooses the schema) or a ScheduleStore. Default: the environment
   * variable CELERITY_SCHEDULES_URL if set, else the broker (the node,
   * Redis, the embedded broker; RabbitMQ keeps none: give PostgreSQL).
   */
  readonly schedules?: ScheduleStore | string;
  /** Where the runtime reports messages it had to reject or requeue. Default: console.error. */
  readonly log?: (message: string) => void;
  /** Sign what this app publishes and run only what trusted keys signed (docs/security.md). */
  readonly signing?: SigningOptions;
  /** Send a task-sent event for each task this app sends (docs/monitoring.md). Default false. Workers send theirs with `worker({ events: true })`. */
  readonly events?: boolean;
  /**
   * The clock every time-dependent part reads: countdown and eta, retry backoff, expiry, time limits,
   * rate-limit buckets, result expiry. Default the system clock; `celerity/testing` passes a virtual one.
   */
  readonly clock?: Clock;
  /**
   * This module's URL (`import.meta.url`): a worker on a threads or process
   * pool loads it in each thread or child to run the same tasks (docs/workers.md).
   */
  readonly module?: string;
}

/**
 * An app: registers tasks, sends them, makes workers and reads results. Made by `createApp`.
 *
 * @example
 * const app: App = createApp();
 * const add = app.task("add", (x: number, y: number) => x + y);
 * await app.worker().start();
 * console.log(await (await add.delay(2, 2)).get()); // 4
 * await app.close();
 */
export interface App {
  readonly broker: Transport;
  readonly results: ResultStore;
  /** The app's module, as given to createApp({ module }). */
  readonly module: string | undefined;
  /** The clock this app's time-dependent parts read (AppOptions.clock): give it to anything else that schedules for the app. */
  readonly clock: Clock;
  /**
   * Register a task. The handler may be sync, async or return an Effect; `this`
   * inside a `function` handler is its TaskContext (id, retries, signal, retry()).
   *
   * @example
   * const add = app.task("add", (x: number, y: number) => x + y);
   */
  task<F extends (this: TaskContext, ...args: any[]) => unknown>(
    name: string,
    handler: F,
    options?: TaskOptions,
  ): Task<Parameters<F>, HandlerResult<ReturnType<F>>>;
  /** A worker consuming this app's broker in this process. */
  worker(options?: WorkerOptions): Worker;
  /** The handle on any task id (sent from this process or any other sharing the result store). */
  result<R = unknown>(id: string): AsyncResult<R>;
  /** Send a task by name (it need not be registered in this process). */
  sendTask<R = unknown>(name: string, args: readonly unknown[], options?: SendOptions): Promise<AsyncResult<R>>;
  /**
   * Send a task by name once per argument list, in one request and one
   * confirm over a broker node (`task.delayMany` when the task is registered).
   * Resolves with a result per list, in order, once all are confirmed.
   *
   * @example
   * const results = await app.sendMany("add", [[1, 2], [3, 4]], { queue: "math" });
   */
  sendMany<R = unknown>(
    name: string,
    argsList: readonly (readonly unknown[])[],
    options?: CallOptions,
  ): Promise<AsyncResult<R>[]>;
  /** Revoke tasks by id: queued or delayed ones never run; with `terminate`, running ones are aborted. */
  revoke(ids: readonly string[], options?: RevokeOptions): Promise<void>;
  /**
   * Register a hook around execution, run by this app's workers (Celery's
   * signals): `workerReady`, `workerShutdown`, `taskPrerun`, `taskSuccess`,
   * `taskFailure`, `taskRetry`, `taskPostrun`. A failing hook is logged and
   * never affects the task. Returns a function that removes the hook.
   *
   * @example
   * app.on("taskFailure", ({ task, id, error }) => console.error(`${task}[${id}] failed`, error));
   */
  on<K extends keyof HookEvents>(hook: K, listener: HookListener<K>): () => void;
  /** Ask the workers what they run, hold and know (docs/control.md). */
  readonly inspect: Inspect;
  /** Manage the queues: pause, resume, purge, list with depths, dead letters (docs/control.md). */
  readonly queues: Queues;
  /** Control of the workers at run time (docs/control.md). */
  readonly control: RemoteControl & {
    /**
     * Change a task's rate limit on every worker, without a restart ("5/s",
     * { rate: "5/s", burst: 2 }, or null to remove it). Its scope and key stay as registered.
     *
     * @example
     * await app.control.rateLimit("fetch", "5/s");
     */
    rateLimit(task: string, limit: RateLimitChange): Promise<void>;
    /** The same as `app.revoke`: every worker learns of it through the broker. */
    revoke(ids: readonly string[], options?: RevokeOptions): Promise<void>;
  };
  /** The cluster's event stream (docs/monitoring.md). */
  readonly events: {
    /**
     * Receive events as they are published, filtered by type and task;
     * resolves once subscribed. Close the subscription when done.
     *
     * @example
     * const sub = await app.events.subscribe((e) => console.log(e.type, e.uuid), { types: ["task-failed"] });
     * await sub.close();
     */
    subscribe(handler: EventHandler, options?: SubscribeOptions): Promise<EventSubscription>;
  };
  /**
   * Declare a periodic task: sent at each instant of `when` by whichever beat
   * leads (docs/periodic-tasks.md). Stored in the broker when a beat of this
   * app starts; throws ScheduleError at once if it cannot be kept.
   *
   * @example
   * app.schedule("report", { cron: "0 3 * * 1-5", tz: "Europe/Berlin" }, report.s("daily"), { catchUp: "once" });
   */
  schedule(name: string, when: When, signature: ScheduledSignature, options?: ScheduleOptions): void;
  /** The schedules kept in the broker: add, remove and list them at run time. */
  readonly schedules: Schedules;
  /** A beat sending this app's periodic tasks (one leads among all beats on the broker). */
  beat(options?: BeatOptions): Beat;
  /** Stop this app's workers (gracefully, waiting at most `timeout` ms for running tasks if given) and close the broker and result store. */
  close(options?: StopOptions): Promise<void>;
}

const NO_DEFAULTS: CallOptions = Object.freeze({});

/**
 * Groups nested deeper than this cannot be sent: the graph is stored as
 * msgpack (on a node, inside a frame), and each level of a group is two
 * levels there. Checked on every transport, so one process refuses what a
 * node would.
 */
const MAX_GROUP_NESTING = 32;

const nestingOf = (ref: ValueRef): number => {
  if ("node" in ref) return 0;
  let deepest = ref.gate === undefined ? 0 : nestingOf(ref.gate);
  for (const item of ref.list) deepest = Math.max(deepest, nestingOf(item));
  return deepest + 1;
};

const checkDepth = (graph: MessageGraph): void => {
  const refs = [graph.output, ...graph.nodes.flatMap((node) => (node.after === undefined ? [] : [node.after]))];
  for (const ref of refs) {
    const depth = nestingOf(ref);
    if (depth > MAX_GROUP_NESTING) {
      throw new CodecError({
        path: "the workflow's graph",
        reason: `groups nested ${depth} deep; at most ${MAX_GROUP_NESTING} levels can be sent`,
      });
    }
  }
};

/** What the value `ref` came after: a step's `after`, an empty group's gate, or what every member of a group follows. */
const parentRef = (graph: MessageGraph, ref: ValueRef): ValueRef | undefined => {
  if ("node" in ref) return graph.nodes[ref.node].after;
  if (ref.gate !== undefined) return ref.gate;
  const heads = ref.list.map((item) => ("node" in item ? graph.nodes[item.node].after : undefined));
  const first = heads[0];
  if (first === undefined) return undefined;
  const key = JSON.stringify(first);
  return heads.every((head) => head !== undefined && JSON.stringify(head) === key) ? first : undefined;
};

/** Why a bulk send cannot be made as asked (undefined when it can). */
const bulkRefusal = (argsList: unknown, options: CallOptions | undefined): string | undefined => {
  if (!Array.isArray(argsList)) return "the argument lists must be an array of arrays";
  const notList = argsList.findIndex((args) => !Array.isArray(args));
  if (notList >= 0) return `argument list ${notList} is not an array`;
  const { taskId, dedupe } = (options ?? {}) as SendOptions;
  if (taskId !== undefined || dedupe !== undefined)
    return "taskId and dedupe name one task: send such tasks one at a time (applyAsync)";
  return undefined;
};

/** An app on celerity's own protocol (see createApp below). */
const createNativeApp = (options: AppOptions): App => {
  const log = options.log ?? ((message: string) => console.error(message));
  const signed = options.signing === undefined ? undefined : prepareSigning(options.signing);
  const clock = options.clock ?? systemClock;
  const connected = connect({
    broker: options.broker,
    results: options.results,
    token: options.token,
    signed: signed !== undefined,
    log,
    clock,
  });
  const signedParts = signed === undefined ? undefined : signed(connected, log, clock);
  const { broker, results } = signedParts ?? connected;
  const codec =
    options.serializer === undefined && options.compressAbove === undefined
      ? new Codec()
      : new TaskCodec(new BodyFormat(options));
  const tasks = new Map<string, TaskDefinition>();
  const workers: Worker[] = [];
  const hooks = new Hooks(log);
  const publisher = new Publisher(
    broker,
    results,
    codec,
    (name) => tasks.get(name)?.defaults ?? NO_DEFAULTS,
    nowOf(clock),
  );
  const isRevoked = (id: string) => broker.isRevoked(id);
  const workflows = new WorkflowExecutor(results, publisher, codec, isRevoked);
  const completion = new TaskCompletion(results, publisher, workflows, codec, isRevoked, log);
  // The transport as connected, not its signed wrapper: a node's shared buckets are reached through it.
  const rateLimits = rateLimitingFor(connected.broker, log, clock, connected.results);
  const scheduling = schedulingFor(
    connected.broker,
    options.schedules ?? process.env.CELERITY_SCHEDULES_URL,
    codec,
    log,
    clock,
    signed === undefined ? undefined : sealRunsWith(signed, connected.results, log, clock),
  );
  let eventDispatcher: EventDispatcher | undefined;
  const events = (): EventDispatcher => (eventDispatcher ??= new EventDispatcher(broker, log));
  const subscriptions = new Set<EventSubscription>();
  const controlClient = new ControlClient(broker, log);
  const startControl = (worker: Worker) =>
    startWorkerControl({ transport: broker, codec, tasks, rateLimits, log }, worker);
  if (options.events === true) {
    const sender = processName();
    publisher.beforePublish = (message, envelope) => {
      const dispatcher = events();
      dispatcher.sendWire(taskSentWire(sender, message, envelope));
      // Out before the task's message (one batch for a burst of sends), so no worker's event about the task can overtake it.
      return dispatcher.flushSoon();
    };
  }

  /**
   * Record the revocation with the broker (queued and delayed copies are never
   * delivered; workers started later see it too), then mark each task that has
   * not started REVOKED and fail the workflow steps after it. A running task
   * finishes unless `terminate` is set, in which case its worker aborts it.
   */
  const revoke = async (ids: readonly string[], revokeOptions: RevokeOptions = {}): Promise<void> => {
    await broker.revoke(ids, { terminate: revokeOptions.terminate ?? false });
    const steps: { workflow: string; node: number; error: RemoteErrorInfo }[] = [];
    for (const id of ids) {
      const record = await results.get(id);
      if (record === undefined || record.state === "STARTED") continue;
      const error = toErrorInfo(new TaskRevokedError({ id, task: record.task }));
      // unlessStarted: a worker may record STARTED between the read above and this write; then the task runs on.
      const first = await results.complete(id, record.task, { state: "REVOKED", error, unlessStarted: true });
      if (first && record.workflow !== undefined)
        steps.push({ workflow: record.workflow, node: record.node as number, error });
    }
    // Only after every named task is REVOKED: steps revoked together stay REVOKED instead of failing as each other's downstream.
    for (const step of steps) await workflows.failed(step.workflow, step.node, step.error);
  };

  const context: ResultContext = { store: results, codec, revoke };

  const send = <R>(
    task: string,
    args: readonly unknown[],
    callOptions: SendOptions | undefined,
  ): Promise<AsyncResult<R>> => {
    if (callOptions !== undefined && (callOptions.taskId !== undefined || callOptions.dedupe !== undefined))
      return sendReserved(task, args, callOptions);
    const id = newTaskId();
    const result = new TaskResult<R>(id, context);
    return publisher
      .publish({ id, task, args, options: publisher.optionsFor(task, callOptions), retries: 0, newId: true })
      .then(() => result);
  };

  const sendMany = <R>(
    task: string,
    argsList: readonly (readonly unknown[])[],
    callOptions: CallOptions | undefined,
  ): Promise<AsyncResult<R>[]> => {
    const refusal = bulkRefusal(argsList, callOptions);
    if (refusal !== undefined) return Promise.reject(new BulkSendError({ task, reason: refusal }));
    const options = publisher.optionsFor(task, callOptions);
    const messages: TaskMessage[] = new Array(argsList.length);
    const sent: AsyncResult<R>[] = new Array(argsList.length);
    for (let i = 0; i < argsList.length; i++) {
      const id = newTaskId();
      messages[i] = { id, task, args: argsList[i], options, retries: 0, newId: true };
      sent[i] = new TaskResult<R>(id, context);
    }
    return publisher.publishMany(messages).then(() => sent);
  };

  const sendReserved = async <R>(
    task: string,
    args: readonly unknown[],
    sendOptions: SendOptions,
  ): Promise<AsyncResult<R>> => {
    const { call, taskId, dedupe } = sendFacts(task, sendOptions);
    const options = publisher.optionsFor(task, call);
    // Arguments that cannot be sent must not take the keys first.
    checkArguments(codec, task, args);
    const reservation = await reserveSend(results, taskId, dedupe);
    if (!reservation.send) return new HeldTaskResult<R>(reservation.id, context);
    await publisher.publish({ id: reservation.id, task, args, options, retries: 0 });
    return new TaskResult<R>(reservation.id, context);
  };

  const resultOf = (graph: MessageGraph, ref: ValueRef, top: boolean): AsyncResult<unknown> => {
    const before = parentRef(graph, ref);
    const parent = before === undefined ? undefined : () => resultOf(graph, before, false);
    return "node" in ref
      ? new TaskResult(graph.nodes[ref.node].id, context, parent)
      : new GroupResult(
          top ? graph.id : newTaskId(),
          ref.list.map((item) => resultOf(graph, item, false)),
          ref.gate === undefined ? undefined : resultOf(graph, ref.gate, false),
          parent,
        );
  };

  const dispatcher: Dispatcher = {
    async dispatch<R>(canvas: Canvas<any, R>, overrides?: CallOptions): Promise<AsyncResult<R>> {
      const graph = compile(canvas as AnyCanvas, {
        newId: newTaskId,
        shapeOf: (name) => {
          const definition = tasks.get(name);
          return definition === undefined ? undefined : { minArgs: definition.minArgs };
        },
        ...(overrides !== undefined ? { overrides } : {}),
      });
      checkDepth(graph);
      // Every step's own arguments must be sendable before the first step goes out.
      for (const node of graph.nodes) checkArguments(codec, node.task, node.args);
      for (const errback of graph.errbacks) checkArguments(codec, errback.task, errback.args);
      await workflows.start(graph);
      const output = resultOf(graph, graph.output, true);
      return new WorkflowResult(
        output as AsyncResult<R>,
        graph.nodes.map((node) => node.id),
        context,
      );
    },
  };

  const app: App = {
    broker,
    results,
    module: options.module,
    clock,
    task(name, handler, taskOptions = {}) {
      if (typeof name !== "string" || name.length === 0)
        throw new TaskRegistrationError({ task: String(name), reason: "a task needs a non-empty name" });
      if (typeof handler !== "function")
        throw new TaskRegistrationError({ task: name, reason: "the handler is not a function" });
      if (tasks.has(name))
        throw new TaskRegistrationError({ task: name, reason: "a task with this name is already registered" });
      if (name.startsWith("celerity."))
        throw new TaskRegistrationError({ task: name, reason: "names starting with 'celerity.' are reserved" });
      const definition: TaskDefinition = {
        name,
        handler,
        options: taskOptions,
        defaults: callDefaults(taskOptions),
        minArgs: handler.length,
      };
      if (taskOptions.rateLimit !== undefined)
        rateLimits.table.register(name, resolveRateLimit(name, taskOptions.rateLimit));
      tasks.set(name, definition);
      return new Task(definition, { send, sendMany }, dispatcher);
    },
    worker(workerOptions) {
      const env = {
        transport: broker,
        store: results,
        codec,
        completion,
        tasks,
        log,
        rateLimits,
        ...(signedParts?.rateLimitKeyDigest !== undefined
          ? { rateLimitKeyDigest: signedParts.rateLimitKeyDigest }
          : {}),
        ...(signedParts !== undefined ? { signedRefusals: () => signedParts.broker.refusals } : {}),
        clock,
        events,
        startControl,
        hooks,
        ...(scheduling.claimRun !== undefined ? { claimOnce: scheduling.claimRun } : {}),
      };
      const worker = new Worker(
        options.module === undefined ? env : { ...env, appModule: options.module },
        workerOptions,
      );
      workers.push(worker);
      return worker;
    },
    result<R>(id: string) {
      return new TaskResult<R>(id, context);
    },
    sendTask: send,
    sendMany,
    revoke,
    on: (hook, listener) => hooks.on(hook, listener),
    inspect: inspectOf(controlClient),
    queues: queuesOf(broker, results),
    control: {
      ...remoteControlOf(controlClient),
      rateLimit: async (task, limit) => rateLimits.change(task, resolveChange(task, limit)),
      revoke,
    },
    events: {
      async subscribe(handler, subscribeOptions = {}) {
        const subscription = await subscribeEvents(broker, handler, subscribeOptions, log);
        subscriptions.add(subscription);
        return {
          queue: subscription.queue,
          close: async () => {
            subscriptions.delete(subscription);
            await subscription.close();
          },
        };
      },
    },
    schedule: scheduling.schedule,
    schedules: scheduling.schedules,
    beat: scheduling.beat,
    async close(stopOptions) {
      await scheduling.close();
      await Promise.all(workers.map((worker) => worker.stop(stopOptions)));
      await Promise.all([...subscriptions].map((subscription) => subscription.close().catch(() => {})));
      await controlClient.close().catch(() => {});
      await eventDispatcher?.close();
      await broker.close();
      await results.close();
    },
  };
  Object.defineProperty(app, APP_TASKS, { value: tasks });
  return app;
};

/**
 * The options of an app on Celery's protocol: `createApp({ protocol: "celery", broker: "redis://…" })`.
 *
 * @example
 * const options: CeleryProtocolOptions = { protocol: "celery", broker: "redis://127.0.0.1:6379/0" };
 */
export interface CeleryProtocolOptions extends CeleryAppOptions {
  readonly protocol: "celery";
}

/**
 * Create an app. With no options everything runs in this process (an embedded
 * broker and an in-memory result store); given a broker's url (a node's, or
 * Redis's), or with CELERITY_BROKER_URL set, it connects to it and uses its
 * result store unless `results` names another (see connect.ts). With
 * `protocol: "celery"` it speaks Celery's protocol instead, sharing queues and
 * results with Python Celery (docs/celery-interop.md).
 *
 * @example
 * const local = createApp();
 * const remote = createApp({ broker: "celerity://127.0.0.1:5690" });
 * const withPython = createApp({ protocol: "celery", broker: "redis://127.0.0.1:6379/0" });
 */
export function createApp(options: CeleryProtocolOptions): CeleryApp;
export function createApp(options?: AppOptions): App;
export function createApp(options: AppOptions | CeleryProtocolOptions = {}): App | CeleryApp {
  return options.protocol === "celery" ? createCeleryApp(options) : createNativeApp(options);
}
