/**
 * The delivery tags a consumer hands out, numbered 1, 2, 3, … for its whole
 * life, each standing for what the consumer holds under it (a message, or a
 * node's own tag). Held in an array indexed from the oldest unsettled one,
 * since tags are handed out in order and settled about in order: a look-up
 * is an index, where a Map of short-lived keys cost a consumer 5–12% of its
 * time (its deletions and rehashing). `clear()` forgets every tag handed
 * out so far, and numbering goes on, so a stale tag never names a later
 * delivery.
 *
 * @example
 * const tags = new DeliveryTags<number>();
 * const tag = tags.add(17); // 1
 * tags.take(tag); // 17, and forgotten
 * tags.take(tag); // undefined
 */
export class DeliveryTags<V> {
  /** What each tag from `first` on stands for; undefined once settled. */
  private slots: (V | undefined)[] = [];
  /** The index in `slots` of tag `first`. */
  private head = 0;
  private first = 1;
  private held = 0;

  /** How many tags are held. */
  get size(): number {
    return this.held;
  }

  /** How many tags were ever handed out: the newest one's number. */
  get issued(): number {
    return this.first + this.slots.length - this.head - 1;
  }

  /** Hand out the next tag for `value`. */
  add(value: V): number {
    this.slots.push(value);
    this.held++;
    return this.issued;
  }

  /** What `tag` stands for, if held. */
  get(tag: number): V | undefined {
    const at = this.head + tag - this.first;
    if (!(at >= this.head && at < this.slots.length)) return undefined;
    return this.slots[at];
  }

  /** What `tag` stands for, if held; it is no longer held after. */
  take(tag: number): V | undefined {
    const value = this.get(tag);
    if (value === undefined) return undefined;
    this.slots[this.head + tag - this.first] = undefined;
    this.held--;
    this.dropSettledHead();
    return value;
  }

  /** Everything held, oldest first. */
  values(): V[] {
    const values: V[] = [];
    for (let i = this.head; i < this.slots.length; i++) {
      const value = this.slots[i];
      if (value !== undefined) values.push(value);
    }
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
    while (this.head < this.slots.length && this.slots[this.head] === undefined) {
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

/** Settled slots at the front kept before the array is copied down (so copying costs at most one element per settle). */
const COMPACT_AT = 1024;
