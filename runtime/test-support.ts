/** Resolve when `predicate` holds, checking after each event-loop turn; fail loudly after `timeoutMs`. */
export const eventually = async (predicate: () => boolean | Promise<boolean>, timeoutMs = 2_000, what = "condition"): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
};

/** A promise with its resolver, for tasks that wait on the test. */
export const deferred = <T = void>() => {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
};
