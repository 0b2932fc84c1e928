/**
 * Waiting in tests: every wait has a limit and fails loudly, naming what it
 * waited for. Limits are multiplied by `CELERITY_TEST_TIME_SCALE` (default
 * 1), one knob for slow or loaded machines instead of scattered caps.
 *
 * @example
 * const record = await within(result.get(), scaled(2_000), "the task's result");
 * await eventually(() => worker.stats().processed === 3, { what: "three tasks processed" });
 */

/** How much longer than written every test limit is; set CELERITY_TEST_TIME_SCALE=3 on a slow machine. */
export const TIME_SCALE = (() => {
  const raw = process.env.CELERITY_TEST_TIME_SCALE;
  const scale = raw === undefined || raw === "" ? 1 : Number(raw);
  if (!(scale > 0)) throw new Error(`CELERITY_TEST_TIME_SCALE must be a positive number, got '${raw}'`);
  return scale;
})();

/** `ms`, scaled for this machine. */
export const scaled = (ms: number): number => Math.round(ms * TIME_SCALE);

/**
 * `promise`, or a rejection naming `what` (and whatever `detail` tells at
 * that moment) once `ms` pass. `ms` is taken as written: scale it with
 * `scaled` where the wait depends on the machine's speed.
 */
export const within = <T>(
  promise: Promise<T>,
  ms: number,
  what: string | (() => string),
  detail: () => string = () => "",
): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const more = detail();
      const name = typeof what === "string" ? what : what();
      reject(new Error(`timed out after ${ms} ms waiting for ${name}${more === "" ? "" : `\n${more}`}`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};

export interface EventuallyOptions {
  /** Default 2,000 ms, scaled. */
  readonly timeoutMs?: number;
  readonly what?: string;
  /** Between checks; default 2 ms (a check per event-loop turn would spin a loaded machine's CPU). */
  readonly intervalMs?: number;
  /** More to say on a failure (e.g. the output of the processes involved), read when the limit passes. */
  readonly detail?: () => string;
}

/** Resolve once `predicate` holds; fail naming `what` when it has not by the limit. */
export const eventually = async (
  predicate: () => boolean | Promise<boolean>,
  options: EventuallyOptions = {},
): Promise<void> => {
  const timeoutMs = options.timeoutMs ?? scaled(2_000);
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) {
      const more = options.detail?.() ?? "";
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${options.what ?? "a condition"}${more === "" ? "" : `\n${more}`}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 2));
  }
};

/** A promise with its resolver, for tasks that wait on the test. */
export const deferred = <T = void>() => {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
};
