/** The runtime's tests wait through the shared helpers (tests/support/waits.ts). */
import { deferred, eventually as eventuallyWith, scaled } from "../tests/support/waits.ts";

export { deferred };

/** Resolve when `predicate` holds; fail loudly naming `what` after `timeoutMs` (scaled for the machine). */
export const eventually = (
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 2_000,
  what = "condition",
): Promise<void> => eventuallyWith(predicate, { timeoutMs: scaled(timeoutMs), what });
