/**
 * Durations as tests write them: milliseconds, or a number with a unit
 * ("500ms", "30s", "10m", "1h", "2d"), summed when several are given
 * ("1h30m").
 */
import { durationTextMs } from "../duration.ts";

/**
 * A duration: milliseconds, or a string such as "10m" or "1h30m".
 *
 * @example
 * await t.clock.advance("1h30m");
 * await t.clock.advance(500); // ms
 */
export type Duration = number | string;

/**
 * A duration that is not a finite, non-negative number of milliseconds nor a string of units ms, s, m, h, d.
 *
 * @example
 * await t.clock.advance("ten minutes"); // throws DurationError
 */
export class DurationError extends Error {
  readonly _tag = "DurationError";
  constructor(readonly value: unknown) {
    super(
      `invalid duration ${JSON.stringify(value) ?? String(value)}: give milliseconds (a finite number of at least 0) ` +
        `or a string of numbers with units ms, s, m, h, d, such as "500ms", "10m" or "1h30m"`,
    );
    this.name = "DurationError";
  }
}

/**
 * The milliseconds of `duration`; throws DurationError on anything else.
 *
 * @example
 * toMilliseconds("1h30m"); // 5_400_000
 */
export const toMilliseconds = (duration: Duration): number => {
  if (typeof duration === "number") {
    if (!Number.isFinite(duration) || duration < 0) throw new DurationError(duration);
    return duration;
  }
  const ms = typeof duration === "string" ? durationTextMs(duration) : undefined;
  if (ms === undefined) throw new DurationError(duration);
  return Math.round(ms);
};
