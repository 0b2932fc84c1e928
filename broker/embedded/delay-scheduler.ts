// Delayed delivery's timing: items held until their eta behind one timer for the earliest,
// handed out in eta order. What is due and when only; delivering is the broker's job.
import type { Clock, ClockTimer } from "../clock.ts";
import { DelayHeap } from "./delay-heap.ts";

/** setTimeout fires after 1 ms when asked for more than this, so longer waits are taken in steps. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * Holds items until their eta, with a single timer armed for the earliest one
 * (re-armed when an earlier item arrives or the earliest is handed out), so a
 * million delayed messages cost one timer. The timer is unref'd, so pending
 * delays do not keep the process alive, unless `keepAlive(true)` says someone
 * is waiting for them. Due items are passed to `onDue` in eta order.
 *
 * @example
 * const delays = new DelayScheduler<string>(systemClock, (id) => console.log("due", id));
 * delays.add(systemClock.now() + 30, "m1");
 */
export class DelayScheduler<T> {
  private readonly heap = new DelayHeap<T>();
  private timer: ClockTimer | undefined;
  private armedFor = Number.POSITIVE_INFINITY;
  private stopped = false;
  private refed = false;

  constructor(
    private readonly clock: Clock,
    private readonly onDue: (item: T) => void,
  ) {}

  /** Items still waiting. */
  get size(): number {
    return this.heap.size;
  }

  add(eta: number, item: T): void {
    if (this.stopped) return;
    this.heap.push(eta, item);
    if (eta < this.armedFor) this.arm(eta);
  }

  /**
   * Hand every item whose eta has passed (by `now`) to `onDue` and re-arm the
   * timer for the next one; returns how many were handed out. The timer calls
   * this; a caller driving a fake clock may call it directly.
   */
  promoteDue(): number {
    const now = this.clock.now();
    let promoted = 0;
    for (let eta = this.heap.peekEta(); eta !== undefined && eta <= now; eta = this.heap.peekEta()) {
      this.onDue(this.heap.pop() as T);
      promoted++;
    }
    const next = this.heap.peekEta();
    if (next === undefined) this.disarm();
    else if (next !== this.armedFor || this.timer === undefined) this.arm(next);
    return promoted;
  }

  /** Whether the armed timer keeps the process alive (it does not by default). */
  keepAlive(refed: boolean): void {
    this.refed = refed;
    if (this.timer === undefined) return;
    if (refed) this.timer.ref();
    else this.timer.unref();
  }

  /** Cancel the timer and forget every waiting item. */
  stop(): void {
    this.stopped = true;
    this.disarm();
    this.heap.clear();
  }

  private arm(eta: number): void {
    this.disarm();
    // A timer can fire a millisecond before the clock reaches eta; promoteDue then re-arms for the rest.
    const delay = Math.min(MAX_TIMER_DELAY_MS, Math.max(1, eta - this.clock.now()));
    this.armedFor = eta;
    this.timer = this.clock.setTimeout(this.fire, delay);
    if (!this.refed) this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    this.promoteDue();
  };
}
