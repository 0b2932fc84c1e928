// The body of a pool's thread or child process: load the app module once,
// then run the calls the worker sends, one at a time, and answer each with
// its encoded value or its error. Time limits beyond the soft one, leases and
// acknowledgement stay with the worker: this side only runs handlers.
import { isMainThread, parentPort } from "node:worker_threads";
import { pathToFileURL } from "node:url";
import { systemClock } from "../../broker/clock.ts";
import { Codec, CodecError } from "../../broker/codec.ts";
import { MAP_TASK, STARMAP_TASK } from "../../dsl/combinators.ts";
import { UnknownTaskError } from "../errors.ts";
import type { TaskDefinition } from "../task.ts";
import { AsyncInvocation, invoke, type InvocationOutcome } from "../worker/task-invocation.ts";
import { mapperOf } from "../worker/task-runner.ts";
import { appTasksOfModule } from "./app-tasks.ts";
import { toCrossing } from "./crossing-error.ts";
import { POOL_CHILD_ENV, type FromChild, type ToChild } from "./pool-protocol.ts";
import { encodeProgress, type ProgressSink } from "../task-progress.ts";

const post: (message: FromChild) => void = isMainThread
  ? (message) => process.send!(message)
  : (message) => parentPort!.postMessage(message);

/** Post `message`; an error whose fields cannot be cloned crosses with its name, message and stack alone. */
const send = (message: FromChild): void => {
  try {
    post(message);
  } catch (error) {
    if (message.type !== "done" || message.ok || message.error.fields === undefined) throw error;
    const { fields: _, ...bare } = message.error;
    post({ ...message, error: bare });
  }
};

const codec = new Codec();

/** Reports go to the worker, which records them: this side holds no result store. Resolves once handed over. */
const progress: ProgressSink = {
  async record(id, task, retries, report) {
    send({ type: "progress", id, task, retries, info: encodeProgress(codec, task, report) });
  },
};
let tasks: ReadonlyMap<string, TaskDefinition> = new Map();
let worker = "";
const mappers = new Map<string, TaskDefinition>();

const memory = (): number => (isMainThread ? process.memoryUsage.rss() : process.memoryUsage().heapUsed);

const load = async (appModule: string): Promise<void> => {
  process.env[POOL_CHILD_ENV] = isMainThread ? "process" : "threads";
  try {
    const url =
      /^[a-z][a-z0-9+.-]*:/i.test(appModule) && !/^[a-z]:[\\/]/i.test(appModule)
        ? appModule
        : pathToFileURL(appModule).href;
    const found = appTasksOfModule((await import(url)) as Record<string, unknown>);
    if (found === undefined)
      return send({ type: "load-failed", reason: "it exports no app: export it as the default export or as 'app'" });
    tasks = found;
    send({ type: "ready", tasks: [...tasks.keys()] });
  } catch (error) {
    send({ type: "load-failed", reason: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
};

const definitionOf = (task: string, target: string | undefined): TaskDefinition | undefined => {
  if (task !== MAP_TASK && task !== STARMAP_TASK) return tasks.get(task);
  const definition = target === undefined ? undefined : tasks.get(target);
  if (definition === undefined) return undefined;
  const key = `${task}:${definition.name}`;
  let mapper = mappers.get(key);
  if (mapper === undefined) mappers.set(key, (mapper = mapperOf(definition, task === STARMAP_TASK)));
  return mapper;
};

const answer = (call: number, task: string, encode: boolean, outcome: InvocationOutcome): void => {
  if (!outcome.ok) return send({ type: "done", call, ok: false, error: toCrossing(outcome.error), memory: memory() });
  let encoded: Uint8Array | undefined;
  try {
    encoded = encode ? codec.encode(outcome.value, `result of task '${task}'`) : undefined;
  } catch (error) {
    if (!(error instanceof CodecError)) throw error;
    return send({ type: "done", call, ok: false, error: toCrossing(error), memory: memory() });
  }
  send({ type: "done", call, ok: true, ...(encoded !== undefined ? { encoded } : {}), memory: memory() });
};

const run = async (message: Extract<ToChild, { type: "run" }>): Promise<void> => {
  const { call, task, target, id, retries, body, softTimeLimit, encode } = message;
  const definition = definitionOf(task, target);
  if (definition === undefined) {
    // The worker's own copy of the app has the task: this child loaded another version of the module.
    const error = new UnknownTaskError({
      task: target ?? task,
      queue: "(pool)",
      worker,
      registered: [...tasks.keys()],
    });
    return answer(call, task, encode, { ok: false, error });
  }
  let args: unknown[];
  try {
    args = (codec.decode(body) as [unknown[]])[0];
  } catch (error) {
    return answer(call, task, encode, { ok: false, error });
  }
  const invocation = invoke(
    definition,
    id,
    retries,
    args,
    softTimeLimit,
    undefined,
    systemClock,
    encode ? progress : undefined,
  );
  answer(call, task, encode, invocation instanceof AsyncInvocation ? await invocation.outcome : invocation);
};

const receive = (message: ToChild): void => {
  switch (message.type) {
    case "init":
      worker = message.worker;
      void load(message.appModule);
      return;
    case "run":
      void run(message);
      return;
    case "exit":
      process.exit(0);
  }
};

if (isMainThread) {
  process.on("message", receive);
  // The worker is gone: nothing can reach this child any more.
  process.on("disconnect", () => process.exit(0));
} else parentPort!.on("message", receive);
