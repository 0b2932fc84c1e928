/**
 * A small seeded random generator (mulberry32) for fault tests: the same seed
 * gives the same sequence, so a failure found with a seed replays with it.
 *
 * @example
 * const random = seeded(42);
 * random(); // the same number in [0, 1) on every run
 */
export const seeded = (seed: number) => (): number => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
};
