// A queue's ready messages in delivery order: by priority (9 first), FIFO within one.
import { Deque } from "./deque.ts";
import { MAX_PRIORITY, MIN_PRIORITY } from "../envelope.ts";

/**
 * A queue's ready messages, ordered by priority (9 first, 0 last) and FIFO
 * within a priority. One deque per priority level, created on first use, and
 * a bitmask of the non-empty levels: finding the highest is a single
 * `Math.clz32`, so the common case of one priority level in use costs the
 * same as a plain deque. Priorities must already be clamped to 0..9.
 *
 * @example
 * const q = new ReadyQueue<string>();
 * q.push("low", 0); q.push("high", 9);
 * q.shift(); // "high"
 */
export class ReadyQueue<T> {
  private readonly levels: (Deque<T> | undefined)[] = new Array<Deque<T> | undefined>(MAX_PRIORITY + 1).fill(undefined);
  private occupied = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  /** Append `item` behind the messages already waiting at `priority`. */
  push(item: T, priority: number): void {
    this.level(priority).push(item);
    this.occupied |= 1 << priority;
    this.count++;
  }

  /** Put `item` in front of the messages waiting at `priority` (a requeue). */
  unshift(item: T, priority: number): void {
    this.level(priority).unshift(item);
    this.occupied |= 1 << priority;
    this.count++;
  }

  /** Remove and return the oldest message of the highest non-empty priority. */
  shift(): T | undefined {
    if (this.occupied === 0) return undefined;
    const top = 31 - Math.clz32(this.occupied);
    const level = this.levels[top] as Deque<T>;
    const item = level.shift();
    if (level.length === 0) this.occupied &= ~(1 << top);
    this.count--;
    return item;
  }

  /** Iterates in delivery order without removing anything. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let priority = MAX_PRIORITY; priority >= MIN_PRIORITY; priority--) {
      const level = this.levels[priority];
      if (level !== undefined) yield* level;
    }
  }

  clear(): void {
    for (const level of this.levels) level?.clear();
    this.occupied = 0;
    this.count = 0;
  }

  private level(priority: number): Deque<T> {
    let level = this.levels[priority];
    if (level === undefined) {
      level = new Deque<T>();
      this.levels[priority] = level;
    }
    return level;
  }
}
