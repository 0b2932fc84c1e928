// How a worker runs its tasks, and the limits of its threads or children.
// Defaults live here, in one place; `resolvePoolOptions` checks what a user
// gave and says what is wrong.
import { WorkerError } from "../errors.ts";

/**
 * Where a worker runs its tasks. `"async"`: on the worker's own event loop
 * (the default). `"threads"`: worker_threads. `"process"`: child processes.
 *
 * @example
 * const pool: PoolKind = "threads";
 * app.worker({ pool, concurrency: 4 });
 */
export type PoolKind = "async" | "threads" | "process";

export const POOL_KINDS: readonly PoolKind[] = ["async", "threads", "process"];

/**
 * Grow the pool with the backlog up to `max`, shrink it to `min` when idle.
 *
 * @example
 * app.worker({ pool: "process", autoscale: { max: 8, min: 2, idleMs: 60_000 } });
 */
export interface AutoscaleOptions {
  readonly max: number;
  readonly min: number;
  /** How long slots must stay idle before the pool shrinks. Default 30 s. */
  readonly idleMs?: number;
  /** How often the backlog is looked at. Default 1 s. */
  readonly intervalMs?: number;
}

/**
 * A worker's pool and the limits of its threads or children (part of
 * WorkerOptions; see docs/workers.md).
 *
 * @example
 * const app = createApp({ module: import.meta.url });
 * app.worker({ pool: "threads", concurrency: 4, maxTasksPerChild: 1_000, maxMemoryPerChild: 512 * 2 ** 20 });
 */
export interface PoolOptions {
  /** Default "async". */
  readonly pool?: PoolKind;
  /**
   * The module that creates the app (a file URL or path), loaded by each
   * thread or child. Default: the app's own `createApp({ module: import.meta.url })`.
   */
  readonly appModule?: string;
  /** Replace a thread or child after it ran this many tasks. Default: never. */
  readonly maxTasksPerChild?: number;
  /**
   * Replace a thread or child after a task leaves it using more than this
   * many bytes (a thread's V8 heap; a child's resident set). Default: no cap.
   */
  readonly maxMemoryPerChild?: number;
  /** Grow and shrink the pool (and the worker's concurrency) with the backlog. */
  readonly autoscale?: AutoscaleOptions;
  /**
   * On the async pool: warn when one task blocks the event loop longer than
   * this. Default 1 s (a heartbeat is 5 s, and a lease may be short).
   */
  readonly blockWarnMs?: number;
}

export const DEFAULT_BLOCK_WARN_MS = 1_000;
export const DEFAULT_AUTOSCALE_IDLE_MS = 30_000;
export const DEFAULT_AUTOSCALE_INTERVAL_MS = 1_000;

/** Pool options with their defaults, checked. */
export interface ResolvedPoolOptions {
  readonly kind: PoolKind;
  readonly appModule: string | undefined;
  readonly maxTasksPerChild: number;
  readonly maxMemoryPerChild: number;
  readonly autoscale: Required<AutoscaleOptions> | undefined;
  readonly blockWarnMs: number;
}

const positiveInteger = (value: unknown): value is number =>
  typeof value === "number" && Number.isInteger(value) && value >= 1;

export const resolvePoolOptions = (
  worker: string,
  options: PoolOptions,
  appModule: string | undefined,
): ResolvedPoolOptions => {
  const fail = (reason: string): never => {
    throw new WorkerError({ worker, reason });
  };
  const kind = options.pool ?? "async";
  if (!POOL_KINDS.includes(kind)) fail(`pool must be one of ${POOL_KINDS.join(", ")}, got '${String(kind)}'`);
  const module = options.appModule ?? appModule;
  if (kind !== "async" && module === undefined) {
    fail(
      `a ${kind} pool loads the app in each ${kind === "threads" ? "thread" : "child"}: say where it is, createApp({ module: import.meta.url }) in the app's module or worker({ appModule })`,
    );
  }
  if (options.maxTasksPerChild !== undefined && !positiveInteger(options.maxTasksPerChild)) {
    fail(`maxTasksPerChild must be a positive integer, got ${options.maxTasksPerChild}`);
  }
  if (options.maxMemoryPerChild !== undefined && !positiveInteger(options.maxMemoryPerChild)) {
    fail(`maxMemoryPerChild must be a positive number of bytes, got ${options.maxMemoryPerChild}`);
  }
  const blockWarnMs = options.blockWarnMs ?? DEFAULT_BLOCK_WARN_MS;
  if (!(typeof blockWarnMs === "number" && blockWarnMs > 0))
    fail(`blockWarnMs must be a positive number of ms, got ${options.blockWarnMs}`);
  let autoscale: Required<AutoscaleOptions> | undefined;
  if (options.autoscale !== undefined) {
    const {
      max,
      min,
      idleMs = DEFAULT_AUTOSCALE_IDLE_MS,
      intervalMs = DEFAULT_AUTOSCALE_INTERVAL_MS,
    } = options.autoscale;
    if (!positiveInteger(max) || !positiveInteger(min) || min > max) {
      fail(`autoscale needs positive integers with min <= max, got max ${max}, min ${min}`);
    }
    if (!(idleMs > 0) || !(intervalMs > 0))
      fail(`autoscale idleMs and intervalMs must be positive, got ${idleMs} and ${intervalMs}`);
    autoscale = { max, min, idleMs, intervalMs };
  }
  return {
    kind,
    appModule: module,
    maxTasksPerChild: options.maxTasksPerChild ?? Infinity,
    maxMemoryPerChild: options.maxMemoryPerChild ?? Infinity,
    autoscale,
    blockWarnMs,
  };
};

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1024,
  k: 1024,
  mb: 1024 ** 2,
  m: 1024 ** 2,
  gb: 1024 ** 3,
  g: 1024 ** 3,
};

/**
 * Bytes in "512MB", "1.5GB", "200k" or "1048576" (units are powers of 1024).
 *
 * @example
 * parseByteSize("256MB"); // 268435456
 */
export const parseByteSize = (text: string): number => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match === null ? undefined : UNITS[match[2].toLowerCase()];
  if (match === null || unit === undefined)
    throw new Error(`'${text}' is not a size: write bytes or a number with KB, MB or GB (for example 512MB)`);
  return Math.round(Number(match[1]) * unit);
};
