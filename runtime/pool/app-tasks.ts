// How a pool's thread or child finds the tasks of the app its module created: the
// symbol an app keeps them under, and which export of a module is the app.
import type { TaskDefinition } from "../task.ts";

/**
 * The symbol an app keeps its tasks under. From the global registry, not a module-local
 * WeakMap: the app module may reach celerity by another path (the package, a link) than
 * the pool's own code, and both must agree.
 */
export const APP_TASKS = Symbol.for("celerity.app.tasks");

/** The registered tasks of `value` when it is an app, else undefined. */
export const tasksOf = (value: unknown): ReadonlyMap<string, TaskDefinition> | undefined => {
  if (value === null || typeof value !== "object") return undefined;
  const tasks = (value as { [APP_TASKS]?: unknown })[APP_TASKS];
  return tasks instanceof Map ? (tasks as ReadonlyMap<string, TaskDefinition>) : undefined;
};

/** The app a module exports: its default export, its `app` export, or its only export that is an app. */
export const appTasksOfModule = (exports: Record<string, unknown>): ReadonlyMap<string, TaskDefinition> | undefined => {
  const preferred = tasksOf(exports.default) ?? tasksOf(exports.app);
  if (preferred !== undefined) return preferred;
  const found = Object.values(exports)
    .map(tasksOf)
    .filter((tasks) => tasks !== undefined);
  return found.length === 1 ? found[0] : undefined;
};
