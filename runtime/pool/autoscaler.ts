/**
 * Grows a worker's pool with its backlog and shrinks it when slots stay idle,
 * between `min` and `max` (Celery's `--autoscale max,min`). It looks every
 * `intervalMs`: messages waiting for a slot grow the pool at once by as many
 * (up to `max`); slots idle for `idleMs` straight are given back (down to
 * what is busy, and never below `min`).
 */
export interface ScaledPool {
  /** Messages held, waiting for a free slot. */
  backlog(): number;
  /** Slots running a task. */
  busy(): number;
  size(): number;
  resize(size: number): void;
}

export interface AutoscalerOptions {
  readonly max: number;
  readonly min: number;
  readonly idleMs: number;
  readonly intervalMs: number;
}

export class Autoscaler {
  private timer: NodeJS.Timeout | undefined;
  private spareSince: number | undefined;

  constructor(
    private readonly options: AutoscalerOptions,
    private readonly pool: ScaledPool,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.tick(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look at the backlog: grow, shrink, or leave the pool as it is. */
  tick(): void {
    const { max, min, idleMs } = this.options;
    const size = this.pool.size();
    const backlog = this.pool.backlog();
    const busy = this.pool.busy();
    if (backlog > 0) {
      this.spareSince = undefined;
      if (size < max) this.pool.resize(Math.min(max, size + backlog));
      return;
    }
    if (busy >= size || size <= min) {
      this.spareSince = undefined;
      return;
    }
    const now = this.now();
    this.spareSince ??= now;
    if (now - this.spareSince >= idleMs) {
      this.spareSince = undefined;
      this.pool.resize(Math.max(min, busy));
    }
  }
}
