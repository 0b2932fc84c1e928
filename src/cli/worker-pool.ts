// The pool and lifecycle flags of `celerity worker` (--pool, --autoscale, recycling,
// --shutdown-timeout, --watch): declared, documented and read here, apart from the
// command's other flags, into the worker's options.
import type { WorkerOptions } from "../../runtime/worker/worker.ts";
import { POOL_KINDS, parseByteSize, type PoolKind } from "../../runtime/pool/pool-options.ts";
import { UsageError } from "./support/options.ts";

/** The pool and lifecycle flags, as the option parser takes them. */
export const POOL_FLAGS = {
  pool: { type: "string" },
  autoscale: { type: "string" },
  "max-tasks-per-child": { type: "string" },
  "max-memory-per-child": { type: "string" },
  "shutdown-timeout": { type: "string" },
  watch: { type: "boolean" },
} as const;

export const POOL_HELP = `
Pool and lifecycle (docs/workers.md):
  --pool <kind>                 async (default), threads or process; threads and
                                children each load the --app module
  --autoscale <max,min>         grow the pool up to max with the backlog, shrink
                                to min when idle (replaces --concurrency)
  --max-tasks-per-child <n>     replace a thread or child after n tasks
  --max-memory-per-child <size> replace it once a task leaves it above size
                                (512MB, 1GB; a thread's heap, a child's RSS)
  --shutdown-timeout <ms>       on SIGTERM/SIGINT, wait this long for running
                                tasks, then abort and requeue them (default 30000);
                                a second signal aborts and requeues at once
  --watch                       restart the worker when files beside the app
                                module change (development)
`;

export interface PoolFlags {
  readonly pool?: string;
  readonly autoscale?: string;
  readonly "max-tasks-per-child"?: string;
  readonly "max-memory-per-child"?: string;
  readonly "shutdown-timeout"?: string;
}

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;

const positiveInteger = (flag: string, text: string): number => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new UsageError(`--${flag} must be a positive integer, got '${text}'`);
  return value;
};

/** The worker options the pool flags ask for, checked; throws naming the flag that is wrong. */
export const poolOptionsOf = (flags: PoolFlags): WorkerOptions => {
  const options: { -readonly [K in keyof WorkerOptions]: WorkerOptions[K] } = {};
  if (flags.pool !== undefined) {
    if (!POOL_KINDS.includes(flags.pool as PoolKind))
      throw new UsageError(`--pool must be one of ${POOL_KINDS.join(", ")}, got '${flags.pool}'`);
    options.pool = flags.pool as PoolKind;
  }
  if (flags.autoscale !== undefined) {
    const parts = flags.autoscale.split(",");
    if (parts.length !== 2)
      throw new UsageError(`--autoscale takes max,min (for example 8,2), got '${flags.autoscale}'`);
    const max = positiveInteger("autoscale", parts[0].trim());
    const min = positiveInteger("autoscale", parts[1].trim());
    if (min > max) throw new UsageError(`--autoscale takes max,min with min <= max, got '${flags.autoscale}'`);
    options.autoscale = { max, min };
  }
  if (flags["max-tasks-per-child"] !== undefined)
    options.maxTasksPerChild = positiveInteger("max-tasks-per-child", flags["max-tasks-per-child"]);
  if (flags["max-memory-per-child"] !== undefined) {
    try {
      options.maxMemoryPerChild = parseByteSize(flags["max-memory-per-child"]);
    } catch (error) {
      throw new UsageError(`--max-memory-per-child: ${(error as Error).message}`);
    }
  }
  return options;
};

export const shutdownTimeoutOf = (flags: PoolFlags): number => {
  const text = flags["shutdown-timeout"];
  if (text === undefined) return DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0)
    throw new UsageError(`--shutdown-timeout must be a number of ms (0 or more), got '${text}'`);
  return value;
};
