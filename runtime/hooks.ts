/**
 * Hooks around execution, Celery's signals: functions registered on the app
 * and called by its workers when a worker is ready or shuts down, and
 * before and after each task runs. A hook observes; it cannot change what a
 * task does. One that throws (or whose promise rejects) is logged with the
 * hook's name and the task, and the task goes on as if it were not there.
 */

/**
 * Facts about a worker, given to `workerReady` and `workerShutdown` hooks.
 *
 * @example
 * app.on("workerReady", ({ worker }) => console.log(`${worker} is consuming`));
 */
export interface WorkerHookEvent {
  readonly worker: string;
}

/**
 * Facts about one run of a task, given to every task hook.
 *
 * @example
 * app.on("taskPrerun", ({ id, task, args, retries }) => console.log(`${task}[${id}] try ${retries + 1}`, args));
 */
export interface TaskHookEvent {
  readonly id: string;
  readonly task: string;
  readonly args: readonly unknown[];
  /** Retries before this run (0 on the first). */
  readonly retries: number;
  readonly worker: string;
}

/**
 * A task's run has ended and its outcome is recorded.
 *
 * @example
 * app.on("taskPostrun", ({ task, outcome }) => metrics.count(`${task}.${outcome}`));
 */
export interface TaskPostrunEvent extends TaskHookEvent {
  readonly outcome: "succeeded" | "failed" | "retried" | "revoked";
}

/**
 * A task returned a value, now recorded.
 *
 * @example
 * app.on("taskSuccess", ({ task, result }) => console.log(task, "returned", result));
 */
export interface TaskSuccessEvent extends TaskHookEvent {
  readonly result: unknown;
}

/**
 * A task failed for good (no retry left), or will be retried: the error it threw.
 *
 * @example
 * app.on("taskFailure", ({ task, id, error }) => console.error(`${task}[${id}] failed`, error));
 */
export interface TaskErrorEvent extends TaskHookEvent {
  /** What the handler threw; undefined when the failure was the runtime's (a result that could not be stored). */
  readonly error: unknown;
}

/**
 * Every hook and what it is given.
 *
 * @example
 * const hook: HookListener<"taskSuccess"> = ({ result }) => console.log(result);
 */
export interface HookEvents {
  workerReady: WorkerHookEvent;
  workerShutdown: WorkerHookEvent;
  taskPrerun: TaskHookEvent;
  taskPostrun: TaskPostrunEvent;
  taskSuccess: TaskSuccessEvent;
  taskFailure: TaskErrorEvent;
  taskRetry: TaskErrorEvent;
}

/**
 * A hook: given its event; may be async (it is not awaited, so it never holds
 * the task up; a rejection is logged).
 *
 * @example
 * const audit: HookListener<"taskFailure"> = async ({ id }) => { await db.insert({ failed: id }); };
 */
export type HookListener<K extends keyof HookEvents> = (event: HookEvents[K]) => void | Promise<void>;

export const HOOK_NAMES: readonly (keyof HookEvents)[] = [
  "workerReady",
  "workerShutdown",
  "taskPrerun",
  "taskPostrun",
  "taskSuccess",
  "taskFailure",
  "taskRetry",
];

const describe = (name: keyof HookEvents, event: object): string => {
  const task = event as Partial<TaskHookEvent>;
  return task.task !== undefined
    ? `hook ${name} for task '${task.task}' (${task.id}) on ${task.worker}`
    : `hook ${name} on ${(event as WorkerHookEvent).worker}`;
};

const reason = (error: unknown): string => (error instanceof Error ? (error.stack ?? error.message) : String(error));

/**
 * The hooks registered on one app. `any` is false until one is registered, so
 * a worker with none pays a field read per task.
 */
export class Hooks {
  any = false;
  private readonly listeners = new Map<keyof HookEvents, HookListener<never>[]>();

  constructor(private readonly log: (message: string) => void) {}

  /** Register `listener`; returns a function that removes it. */
  on<K extends keyof HookEvents>(name: K, listener: HookListener<K>): () => void {
    if (!HOOK_NAMES.includes(name))
      throw new TypeError(`unknown hook '${String(name)}'; hooks: ${HOOK_NAMES.join(", ")}`);
    if (typeof listener !== "function") throw new TypeError(`hook ${name}: the listener is not a function`);
    const list = this.listeners.get(name) ?? [];
    list.push(listener as HookListener<never>);
    this.listeners.set(name, list);
    this.any = true;
    return () => {
      const at = list.indexOf(listener as HookListener<never>);
      if (at >= 0) list.splice(at, 1);
    };
  }

  /** Call the hooks of `name` in the order they were registered; none of their failures escapes. */
  emit<K extends keyof HookEvents>(name: K, event: HookEvents[K]): void {
    const list = this.listeners.get(name);
    if (list === undefined) return;
    for (const listener of list) {
      try {
        const returned = (listener as HookListener<K>)(event);
        if (returned !== undefined && typeof (returned as Promise<void>).then === "function") {
          (returned as Promise<void>).then(undefined, (error: unknown) =>
            this.log(`${describe(name, event)} failed: ${reason(error)}`),
          );
        }
      } catch (error) {
        this.log(`${describe(name, event)} failed: ${reason(error)}`);
      }
    }
  }
}
