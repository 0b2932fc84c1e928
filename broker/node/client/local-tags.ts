/**
 * The delivery tags a consumer hands to the runtime, numbered 1, 2, 3, …
 * for its whole life, each standing for the node's tag of a delivery on the
 * current connection. Held in an array indexed from the oldest unsettled
 * one, since tags are handed out in order and settled about in order: a
 * look-up is an index, where a Map of short-lived keys cost a worker 5% of
 * its time draining a backlog (its deletions and rehashing). `clear()`
 * forgets every tag handed out so far (a new connection: those tags mean
 * nothing there), and numbering goes on, so a stale tag never names a
 * later delivery.
 *
 * @example
 * const tags = new LocalTags();
 * const local = tags.add(17); // 1
 * tags.take(local); // 17, and forgotten
 * tags.take(local); // undefined
 */
export class LocalTags {
  /** The node's tag of each local tag from `first` on; NONE once settled. */
  private slots: number[] = [];
  /** The index in `slots` of local tag `first`. */
  private head = 0;
  private first = 1;
  private held = 0;

  /** How many tags are held. */
  get size(): number {
    return this.held;
  }

  /** Hand out the next local tag for `nodeTag`. */
  add(nodeTag: number): number {
    this.slots.push(nodeTag);
    this.held++;
    return this.first + this.slots.length - this.head - 1;
  }

  /** The node's tag for `local`, if held. */
  get(local: number): number | undefined {
    const at = this.head + local - this.first;
    if (at < this.head || at >= this.slots.length) return undefined;
    const nodeTag = this.slots[at];
    return nodeTag === NONE ? undefined : nodeTag;
  }

  /** The node's tag for `local`, if held; it is no longer held after. */
  take(local: number): number | undefined {
    const nodeTag = this.get(local);
    if (nodeTag === undefined) return undefined;
    this.slots[this.head + local - this.first] = NONE;
    this.held--;
    this.dropSettledHead();
    return nodeTag;
  }

  /** Every node tag held, oldest first. */
  values(): number[] {
    const values: number[] = [];
    for (let i = this.head; i < this.slots.length; i++) if (this.slots[i] !== NONE) values.push(this.slots[i]);
    return values;
  }

  /** Forget every tag handed out so far; the next one numbers on from the last. */
  clear(): void {
    this.first += this.slots.length - this.head;
    this.slots = [];
    this.head = 0;
    this.held = 0;
  }

  private dropSettledHead(): void {
    while (this.head < this.slots.length && this.slots[this.head] === NONE) {
      this.head++;
      this.first++;
    }
    if (this.head === this.slots.length) {
      this.slots = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AT && this.head * 2 >= this.slots.length) {
      this.slots = this.slots.slice(this.head);
      this.head = 0;
    }
  }
}

/** A settled slot: node tags are positive. */
const NONE = -1;
/** Settled slots at the front kept before the array is copied down (so copying costs at most one element per settle). */
const COMPACT_AT = 1024;
