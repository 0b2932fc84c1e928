// Durations written as text, read the same everywhere the package accepts
// one (schedules, the testing toolkit's clock): numbers with units ms, s, m,
// h, d, summed when several are given ("1h30m"). What counts as a valid
// duration for each caller (zero allowed, whole ms) stays with the caller.

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/y;

/**
 * The milliseconds `text` stands for ("500ms", "30s", "1.5h", "1h 30m"), or
 * undefined when it is not a sum of numbers with units ms, s, m, h, d.
 *
 * @example
 * durationTextMs("1h30m"); // 5_400_000
 * durationTextMs("ten minutes"); // undefined
 */
export const durationTextMs = (text: string): number | undefined => {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < trimmed.length) {
    const start = PART.lastIndex;
    const match = PART.exec(trimmed);
    if (match === null || match.index !== start) return undefined;
    total += Number(match[1]) * UNIT_MS[match[2]];
    while (trimmed[PART.lastIndex] === " ") PART.lastIndex++;
  }
  return total;
};

/**
 * `ms` in the largest unit that divides it evenly, the way a person writes it.
 *
 * @example
 * formatDurationMs(90_000); // "90s"
 * formatDurationMs(3_600_000); // "1h"
 */
export const formatDurationMs = (ms: number): string => {
  for (const unit of ["d", "h", "m", "s"]) if (ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  return `${ms}ms`;
};
