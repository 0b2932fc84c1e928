/**
 * The beat's schedules ordered by their next instant: a binary min-heap with
 * lazy removal (a schedule's newer instant supersedes the entries pushed
 * before it), so a tick costs the runs due and the changes read, not the
 * number of schedules.
 *
 * @example
 * const queue = new DueQueue();
 * queue.set("report", Date.parse("2026-03-02T02:00:00Z"));
 * queue.takeDue(Date.now()); // ["report"] once its instant has come
 */
export class DueQueue {
  private readonly heap: { at: number; name: string }[] = [];
  /** Each schedule's instant in force; an entry in the heap that disagrees is stale. */
  private readonly current = new Map<string, number>();

  /** Schedule `name` at `at`, or (undefined) not at all. */
  set(name: string, at: number | undefined): void {
    if (at === undefined) {
      this.current.delete(name);
      return;
    }
    if (this.current.get(name) === at) return;
    this.current.set(name, at);
    this.push({ at, name });
    // Stale entries pile up as schedules move on: rebuild once they outnumber the live ones.
    if (this.heap.length > 2 * this.current.size + 1_024) this.rebuild();
  }

  clear(): void {
    this.heap.length = 0;
    this.current.clear();
  }

  /** The earliest instant in force, if any. */
  peek(): number | undefined {
    this.dropStale();
    return this.heap.length === 0 ? undefined : this.heap[0].at;
  }

  /** The schedules whose instant is at or before `now`, earliest first; they leave the queue until `set` again. */
  takeDue(now: number): string[] {
    const due: string[] = [];
    for (;;) {
      this.dropStale();
      const top = this.heap[0];
      if (top === undefined || top.at > now) return due;
      this.pop();
      this.current.delete(top.name);
      due.push(top.name);
    }
  }

  private dropStale(): void {
    while (this.heap.length > 0 && this.current.get(this.heap[0].name) !== this.heap[0].at) this.pop();
  }

  private rebuild(): void {
    this.heap.length = 0;
    for (const [name, at] of this.current) this.push({ at, name });
  }

  private push(entry: { at: number; name: string }): void {
    const heap = this.heap;
    let i = heap.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      if (heap[parent].at <= entry.at) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as { at: number; name: string };
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right].at < heap[left].at ? right : left;
      if (heap[child].at >= last.at) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = last;
  }
}
