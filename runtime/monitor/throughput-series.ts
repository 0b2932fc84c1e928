/**
 * Throughput and latency per second over the last minutes, for the
 * monitor's live charts: how many tasks finished (succeeded, failed) each
 * second and how long their handlers ran. A fixed ring of seconds, so its
 * size never depends on the load.
 */

/**
 * One second of the series.
 *
 * @example
 * const point: ThroughputPoint = { second: 1_700_000_000, succeeded: 120, failed: 2, meanRuntimeMs: 4.1, maxRuntimeMs: 30 };
 */
export interface ThroughputPoint {
  /** Seconds since the epoch. */
  readonly second: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Mean handler run time of the tasks that succeeded in this second, or null when none did. */
  readonly meanRuntimeMs: number | null;
  readonly maxRuntimeMs: number | null;
}

/**
 * The per-second ring behind the charts.
 *
 * @example
 * const series = new ThroughputSeries(120);
 * series.succeeded(0.004);
 * series.points(); // 120 points, oldest first
 */
export class ThroughputSeries {
  private readonly seconds: Float64Array;
  private readonly succeededCounts: Uint32Array;
  private readonly failedCounts: Uint32Array;
  private readonly runtimeSums: Float64Array;
  private readonly runtimeMaxes: Float64Array;

  constructor(
    readonly length = 120,
    private readonly now: () => number = Date.now,
  ) {
    this.seconds = new Float64Array(length).fill(-1);
    this.succeededCounts = new Uint32Array(length);
    this.failedCounts = new Uint32Array(length);
    this.runtimeSums = new Float64Array(length);
    this.runtimeMaxes = new Float64Array(length);
  }

  /** A task succeeded now, its handler having run `runtimeS` seconds. */
  succeeded(runtimeS: number): void {
    const slot = this.slot();
    this.succeededCounts[slot]++;
    const ms = runtimeS * 1000;
    this.runtimeSums[slot] += ms;
    if (ms > this.runtimeMaxes[slot]) this.runtimeMaxes[slot] = ms;
  }

  /** A task failed for good now. */
  failed(): void {
    this.failedCounts[this.slot()]++;
  }

  private slot(): number {
    const second = Math.floor(this.now() / 1000);
    const slot = second % this.length;
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second;
      this.succeededCounts[slot] = 0;
      this.failedCounts[slot] = 0;
      this.runtimeSums[slot] = 0;
      this.runtimeMaxes[slot] = 0;
    }
    return slot;
  }

  /** One point per second of the last `length` seconds, oldest first; seconds without tasks are zeros. */
  points(): ThroughputPoint[] {
    const now = Math.floor(this.now() / 1000);
    const points: ThroughputPoint[] = [];
    for (let second = now - this.length + 1; second <= now; second++) {
      const slot = ((second % this.length) + this.length) % this.length;
      if (this.seconds[slot] !== second) {
        points.push({ second, succeeded: 0, failed: 0, meanRuntimeMs: null, maxRuntimeMs: null });
        continue;
      }
      const succeeded = this.succeededCounts[slot];
      points.push({
        second,
        succeeded,
        failed: this.failedCounts[slot],
        meanRuntimeMs: succeeded === 0 ? null : this.runtimeSums[slot] / succeeded,
        maxRuntimeMs: succeeded === 0 ? null : this.runtimeMaxes[slot],
      });
    }
    return points;
  }
}
