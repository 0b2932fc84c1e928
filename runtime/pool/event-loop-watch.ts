/**
 * On the async pool, a block the runner cannot time: an async handler that
 * computes synchronously after an `await`. A timer that should fire every
 * `intervalMs` measures how late it runs; a lateness past `warnMs` is a
 * block, reported with the tasks that were running when it began (those
 * seen at the tick before: by the late tick the blocking task has usually
 * finished). (A
 * handler's first synchronous run is timed exactly by the runner instead;
 * `recentlyReported` keeps that block from being reported twice.)
 */
export interface EventLoopWatchOptions {
  readonly warnMs: number;
  /** Up to a few of the async tasks running now, as "name (id)". */
  readonly running: () => readonly string[];
  /** The last async task that finished, as "name (id)", and how many have finished so far. */
  readonly lastFinished: () => { readonly label: string | undefined; readonly count: number };
  /** When the runner last reported a block itself (performance.now()). */
  readonly lastReported: () => number;
  readonly report: (ms: number, running: readonly string[]) => void;
}

export class EventLoopWatch {
  private timer: NodeJS.Timeout | undefined;
  private expected = 0;
  private runningBefore: readonly string[] = [];
  private finishedBefore = 0;
  private readonly intervalMs: number;

  constructor(private readonly options: EventLoopWatchOptions) {
    this.intervalMs = Math.max(10, Math.floor(options.warnMs / 2));
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.expected = performance.now() + this.intervalMs;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = performance.now();
    const late = now - this.expected;
    this.expected = now + this.intervalMs;
    const before = this.runningBefore;
    const finished = this.options.lastFinished();
    const finishedSince = finished.count !== this.finishedBefore ? finished.label : undefined;
    this.finishedBefore = finished.count;
    this.runningBefore = this.options.running();
    if (late <= this.options.warnMs || this.options.lastReported() > now - late) return;
    // Running at the tick before, or started and finished since (the block is usually over, and its task with it, by this tick).
    const suspects = new Set([
      ...before,
      ...(finishedSince !== undefined ? [finishedSince] : []),
      ...this.runningBefore,
    ]);
    if (suspects.size > 0) this.options.report(late, [...suspects]);
  }
}
