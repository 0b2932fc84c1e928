// A worker on Celery's protocol: takes task messages from its CeleryBroker (kombu's Redis
// lists or RabbitMQ queues), runs the handlers registered here, stores results in Celery's
// format, and carries a canvas on as Celery's worker does (the next chain step and the
// callbacks before storing the result, the chord join after). A message it cannot run is
// logged and moved to `<queue>.dead-letter`.
import { hostname } from "node:os";
import { TimeLimitExceeded } from "../errors.ts";
import { CeleryMessageError } from "./celery-errors.ts";
import { messageOfSignature, parseCeleryMessage, type CeleryTaskMessage } from "./celery-message.ts";
import type { CeleryBroker, CeleryConsumption, CeleryInbound } from "./celery-broker.ts";
import type { CeleryRedis } from "./celery-redis.ts";
import {
  EXCEPTION_STATES,
  fromCeleryException,
  resultMeta,
  toCeleryException,
  type CeleryState,
} from "./celery-result-meta.ts";

/**
 * What a handler on the Celery protocol sees as `this`: its id, retries, keyword arguments, signal and `retry()`.
 *
 * @example
 * app.task("tasks.greet", function (name: string) {
 *   return `${(this.kwargs.greeting as string | undefined) ?? "hello"}, ${name}`;
 * });
 */
export interface CeleryTaskContext {
  readonly id: string;
  readonly name: string;
  /** How many times this task was retried so far, by either side. */
  readonly retries: number;
  /** The keyword arguments the message carried (Python's `**kwargs`); `{}` when none. */
  readonly kwargs: Readonly<Record<string, unknown>>;
  /** Fires on the soft time limit, the hard time limit and when the worker stops. */
  readonly signal: AbortSignal;
  /** Ask for a retry after `countdown` ms (throws): the message is sent again with `retries + 1`, the result reads RETRY meanwhile. */
  retry(options?: { readonly countdown?: number; readonly max?: number }): never;
}

export type CeleryHandler = (this: CeleryTaskContext, ...args: any[]) => unknown;

/**
 * Where and how much a worker on the Celery protocol consumes.
 *
 * @example
 * await app.worker({ queues: ["celery", "reports"], concurrency: 8 }).start();
 */
export interface CeleryWorkerOptions {
  /** Queues to consume. Default: the app's queue. */
  readonly queues?: readonly string[];
  /** Tasks run at once. Default 4. */
  readonly concurrency?: number;
}

interface Deps {
  readonly broker: CeleryBroker;
  readonly backend: CeleryRedis;
  readonly handlers: ReadonlyMap<string, CeleryHandler>;
  readonly defaultQueue: string;
  readonly log: (message: string) => void;
  readonly now: () => number;
}

class RetrySignal extends Error {
  constructor(
    readonly countdown: number,
    readonly max: number | undefined,
  ) {
    super("retry requested");
  }
}

const MAX_RETRIES_DEFAULT = 3;

/**
 * A worker on Celery's protocol, made by `app.worker()`: `start()` to consume, `stop()` to finish running tasks and end.
 *
 * @example
 * const worker = await app.worker({ concurrency: 4 }).start();
 * await worker.stop();
 */
export class CeleryWorker {
  readonly name = `celerity@${hostname()}`;
  private readonly queues: readonly string[];
  private readonly concurrency: number;
  private consumption: CeleryConsumption | undefined;
  private readonly active = new Set<Promise<void>>();
  private readonly aborts = new Set<AbortController>();

  constructor(
    private readonly deps: Deps,
    options: CeleryWorkerOptions = {},
  ) {
    this.queues = options.queues ?? [deps.defaultQueue];
    this.concurrency = options.concurrency ?? 4;
  }

  /** Declare the queues and start consuming; resolves once the worker is receiving messages. */
  async start(): Promise<this> {
    if (this.consumption !== undefined) return this;
    this.consumption = await this.deps.broker.consume(this.queues, this.concurrency, (inbound) => {
      const handled = this.handle(inbound).finally(() => this.active.delete(handled));
      this.active.add(handled);
    });
    return this;
  }

  /** Stop receiving, wait for running tasks to finish, and close the worker's connection. */
  async stop(): Promise<void> {
    await this.consumption?.stop();
    await Promise.all(this.active);
  }

  private async reject(inbound: CeleryInbound, error: CeleryMessageError): Promise<void> {
    await this.deps.broker.deadLetter(inbound.queue, inbound.raw, error.message, this.deps.now());
    await inbound.ack();
    this.deps.log(`celery message rejected (dead-lettered to '${inbound.queue}.dead-letter'): ${error.message}`);
  }

  private async handle(inbound: CeleryInbound): Promise<void> {
    const { backend } = this.deps;
    const { delivery, queue } = inbound;
    try {
      if (delivery instanceof CeleryMessageError) return await this.reject(inbound, delivery);
      let message: CeleryTaskMessage;
      try {
        message = parseCeleryMessage(delivery.headers, delivery.body, queue, delivery.priority);
      } catch (error) {
        if (error instanceof CeleryMessageError) return await this.reject(inbound, error);
        throw error;
      }
      const handler = this.deps.handlers.get(message.task);
      if (handler === undefined) {
        const known = [...this.deps.handlers.keys()].join(", ") || "(none)";
        const error = new CeleryMessageError({
          id: message.id,
          task: message.task,
          reason: `task '${message.task}' is not registered on worker ${this.name}; registered: ${known}`,
        });
        await backend.store(
          resultMeta(
            message.id,
            "FAILURE",
            { exc_type: "NotRegistered", exc_message: [message.task], exc_module: "celery.exceptions" },
            { now: this.deps.now(), traceback: error.message },
          ),
        );
        return await this.reject(inbound, error);
      }
      if (message.eta !== null && message.eta > this.deps.now()) await this.sleepUntil(message.eta);
      if (message.expires !== null && message.expires <= this.deps.now()) {
        await backend.store(
          resultMeta(
            message.id,
            "REVOKED",
            { exc_type: "TaskRevokedError", exc_message: ["expired"], exc_module: "celery.exceptions" },
            { now: this.deps.now() },
          ),
        );
        return await inbound.ack();
      }
      await this.run(message, handler);
      await inbound.ack();
    } catch (error) {
      // A failure of the broker or the result backend itself: the message is given back, not lost.
      this.deps.log(
        `celery worker ${this.name}: message on '${queue}' given back unacknowledged: ${(error as Error).message}`,
      );
      await inbound.abandon().catch(() => undefined);
    }
  }

  private sleepUntil(at: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - this.deps.now())));
  }

  private async run(message: CeleryTaskMessage, handler: CeleryHandler): Promise<void> {
    const abort = new AbortController();
    this.aborts.add(abort);
    const timers: NodeJS.Timeout[] = [];
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
    try {
      const context: CeleryTaskContext = {
        id: message.id,
        name: message.task,
        retries: message.retries,
        kwargs: message.kwargs,
        signal: abort.signal,
        retry: (options = {}) => {
          throw new RetrySignal(options.countdown ?? 1_000, options.max);
        },
      };
      const invoked = Promise.resolve().then(() => handler.apply(context, [...message.args]));
      const limits: Promise<never>[] = [];
      if (message.softTimeLimit !== null)
        timers.push(setTimeout(() => abort.abort(new Error("soft time limit exceeded")), message.softTimeLimit * 1000));
      if (message.timeLimit !== null) {
        const hard = message.timeLimit * 1000;
        limits.push(
          new Promise<never>((_, reject) =>
            timers.push(
              setTimeout(() => {
                abort.abort(new TimeLimitExceeded({ task: message.task, limitMs: hard }));
                reject(new TimeLimitExceeded({ task: message.task, limitMs: hard }));
              }, hard),
            ),
          ),
        );
      }
      outcome = { ok: true, value: await Promise.race([invoked, ...limits]) };
    } catch (error) {
      outcome = { ok: false, error };
    } finally {
      for (const timer of timers) clearTimeout(timer);
      this.aborts.delete(abort);
    }
    if (outcome.ok) return this.succeeded(message, outcome.value);
    if (outcome.error instanceof RetrySignal) {
      const max = outcome.error.max ?? MAX_RETRIES_DEFAULT;
      if (message.retries < max) return this.retry(message, outcome.error.countdown);
      return this.failed(
        message,
        new Error(`task '${message.task}' (${message.id}) gave up after ${message.retries} retries`),
      );
    }
    return this.failed(message, outcome.error);
  }

  private async retry(message: CeleryTaskMessage, countdown: number): Promise<void> {
    const now = this.deps.now();
    await this.deps.backend.store(
      resultMeta(
        message.id,
        "RETRY",
        { exc_type: "Retry", exc_message: [`retry in ${countdown} ms`], exc_module: "celery.exceptions" },
        { now, group: message.group, parent: message.parentId },
      ),
    );
    await this.deps.broker.publish({ ...message, retries: message.retries + 1, eta: now + countdown });
  }

  private async succeeded(message: CeleryTaskMessage, value: unknown): Promise<void> {
    const { backend } = this.deps;
    const children: unknown[] = [];
    const chain = message.embed.chain;
    // Celery sends what follows before storing this result, so `children` is complete once it is readable.
    if (chain !== null && chain.length > 0) {
      const rest = chain.slice(0, -1);
      const next = messageOfSignature(chain[chain.length - 1]!, {
        prepend: [value],
        chain: rest,
        parentId: message.id,
        rootId: message.rootId,
        queue: this.deps.defaultQueue,
      });
      await this.deps.broker.publish({ ...next, priority: message.priority });
      children.push([[next.id, null], null]);
    }
    for (const callback of message.embed.callbacks ?? []) {
      const next = messageOfSignature(callback, {
        prepend: [value],
        parentId: message.id,
        rootId: message.rootId,
        queue: this.deps.defaultQueue,
      });
      await this.deps.broker.publish(next);
      children.push([[next.id, null], null]);
    }
    const json = JSON.stringify(value ?? null);
    const stored = json === undefined ? null : (JSON.parse(json) as unknown);
    if (!message.ignoreResult)
      await backend.store(
        resultMeta(message.id, "SUCCESS", stored, {
          now: this.deps.now(),
          children,
          group: message.group,
          parent: message.parentId,
        }),
      );
    await this.chordPart(message, "SUCCESS", stored);
  }

  private async failed(message: CeleryTaskMessage, error: unknown): Promise<void> {
    const exception = toCeleryException(error);
    const traceback = error instanceof Error && error.stack !== undefined ? error.stack : null;
    await this.deps.backend.store(
      resultMeta(message.id, "FAILURE", exception, {
        now: this.deps.now(),
        traceback,
        group: message.group,
        parent: message.parentId,
      }),
    );
    // The rest of the chain will never run: record it as failed, as Celery's worker does, so its get() does not wait forever.
    for (const step of message.embed.chain ?? []) {
      const id = step.options.task_id;
      if (typeof id === "string")
        await this.deps.backend.store(
          resultMeta(id, "FAILURE", exception, { now: this.deps.now(), traceback, parent: message.id }),
        );
    }
    await this.chordPart(message, "FAILURE", exception);
  }

  private async chordPart(message: CeleryTaskMessage, state: CeleryState, result: unknown): Promise<void> {
    const body = message.embed.chord;
    if (body === null || message.group === null) return;
    const { backend } = this.deps;
    const complete = await backend.chordPart(
      message.group,
      message.groupIndex,
      JSON.stringify([1, message.id, state, result]),
    );
    if (!complete) return;
    const entries = (await backend.chordEntries(message.group)).map(
      (entry) => JSON.parse(entry) as [number, string, CeleryState, unknown],
    );
    const failed = entries.find((entry) => EXCEPTION_STATES.has(entry[2]));
    const bodyMessage = messageOfSignature(body, {
      prepend: [entries.map((entry) => entry[3])],
      parentId: null,
      rootId: message.rootId,
      queue: this.deps.defaultQueue,
    });
    if (failed !== undefined) {
      const cause = fromCeleryException(failed[3], null);
      const reason = `Dependency ${failed[1]} raised ${cause.name}(${JSON.stringify(cause.message)})`;
      await backend.store(
        resultMeta(
          bodyMessage.id,
          "FAILURE",
          { exc_type: "ChordError", exc_message: [reason], exc_module: "celery.exceptions" },
          { now: this.deps.now() },
        ),
      );
      return;
    }
    await this.deps.broker.publish(bodyMessage);
  }
}
