// The tasks whose STARTED a durable result store has not logged yet: handed back after a delay,
// by when most have finished and their final record, logged anyway, has made STARTED moot.

/**
 * Ids held for between `delayMs` and twice that, in two generations swapped
 * by one timer (no timer per id, and none while empty). `take` removes an id
 * early, for a caller that needs its record logged now.
 *
 * @example
 * const starts = new DeferredStarts(100, (ids) => ids.forEach(logIfStillStarted));
 * starts.add(id);
 * if (starts.take(id)) logIfStillStarted(id); // a reader asks before the delay is up
 */
export class DeferredStarts {
  private recent = new Set<string>();
  private older = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly delayMs: number,
    private readonly due: (ids: ReadonlySet<string>) => void,
  ) {}

  get size(): number {
    return this.recent.size + this.older.size;
  }

  add(id: string): void {
    this.recent.add(id);
    this.timer ??= setTimeout(() => this.tick(), this.delayMs).unref();
  }

  /** Whether `id` was held (it no longer is). */
  take(id: string): boolean {
    return this.recent.delete(id) || this.older.delete(id);
  }

  /** Every id held, and none held any more (for a store that closes). */
  takeAll(): Set<string> {
    const all = this.older;
    for (const id of this.recent) all.add(id);
    this.older = new Set();
    this.recent = new Set();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    return all;
  }

  private tick(): void {
    this.timer = undefined;
    const due = this.older;
    this.older = this.recent;
    this.recent = new Set();
    if (this.older.size > 0) this.timer = setTimeout(() => this.tick(), this.delayMs).unref();
    if (due.size > 0) this.due(due);
  }
}
