// The min-heap by eta behind delayed delivery: equal etas come out in publish order.
interface Entry<T> {
  readonly eta: number;
  readonly seq: number;
  readonly item: T;
}

/**
 * A binary min-heap keyed by eta (epoch ms). Items with equal etas come out in
 * insertion order, so delayed messages due at the same moment keep their
 * publish order.
 *
 * @example
 * const heap = new DelayHeap<string>();
 * heap.push(20, "b"); heap.push(10, "a");
 * heap.peekEta(); // 10
 * heap.pop(); // "a"
 */
export class DelayHeap<T> {
  private readonly entries: Entry<T>[] = [];
  private seq = 0;

  get size(): number {
    return this.entries.length;
  }

  push(eta: number, item: T): void {
    const entries = this.entries;
    const entry: Entry<T> = { eta, seq: this.seq++, item };
    let i = entries.length;
    entries.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, entries[parent])) break;
      entries[i] = entries[parent];
      i = parent;
    }
    entries[i] = entry;
  }

  /** The earliest eta, or `undefined` when empty. */
  peekEta(): number | undefined {
    return this.entries.length === 0 ? undefined : this.entries[0].eta;
  }

  /** Remove and return the item with the earliest eta. */
  pop(): T | undefined {
    const entries = this.entries;
    if (entries.length === 0) return undefined;
    const top = entries[0];
    const last = entries.pop() as Entry<T>;
    if (entries.length > 0) {
      let i = 0;
      const n = entries.length;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && before(entries[right], entries[left]) ? right : left;
        if (!before(entries[child], last)) break;
        entries[i] = entries[child];
        i = child;
      }
      entries[i] = last;
    }
    return top.item;
  }

  clear(): void {
    this.entries.length = 0;
  }
}

const before = <T>(a: Entry<T>, b: Entry<T>): boolean => a.eta < b.eta || (a.eta === b.eta && a.seq < b.seq);
