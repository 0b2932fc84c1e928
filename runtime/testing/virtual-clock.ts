/**
 * A clock whose time moves only when told to. Everything that reads an
 * app's clock (countdown and eta, retry backoff, expiry, time limits,
 * rate-limit buckets) then runs on it, so a test covers an hour of work in
 * a few milliseconds and in the same order as real time would.
 */
import type { Clock, ClockTimer } from "../../broker/clock.ts";
import { toMilliseconds, type Duration } from "./duration.ts";

/**
 * A timer of a VirtualClock: due at a time on that clock, fired by `advance` or `runDue`.
 *
 * @example
 * const timer = clock.setTimeout(() => console.log("due"), 1_000);
 * clock.clearTimeout(timer);
 */
export class VirtualTimer implements ClockTimer {
  /** @internal */ cancelled = false;
  constructor(
    readonly dueAt: number,
    /** Creation order, which breaks ties between timers due at the same time. */
    readonly seq: number,
    /** @internal */ readonly callback: () => void,
  ) {}
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

/**
 * What runs after each timer fires, before the next one: by default a few turns of the event loop.
 *
 * @example
 * const settle: Settle = () => new Promise((resolve) => setImmediate(resolve));
 */
export type Settle = () => Promise<void>;

const yieldTurns: Settle = async () => {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

/**
 * A virtual clock: `now()` stands still until `advance`, which fires every
 * timer that falls due on the way, earliest first, letting what each one
 * started run (`settle`) before the next. Timers are in virtual time only:
 * none keeps the process alive and none fires on its own.
 *
 * @example
 * const clock = new VirtualClock(Date.parse("2030-01-01T00:00:00Z"));
 * clock.setTimeout(() => console.log("an hour later"), 3_600_000);
 * await clock.advance("1h"); // prints at once
 */
export class VirtualClock implements Clock {
  private time: number;
  private timers: VirtualTimer[] = [];
  private seq = 0;
  private advancing = false;

  constructor(start: number | Date = Date.now()) {
    this.time = start instanceof Date ? start.getTime() : start;
    if (!Number.isFinite(this.time))
      throw new RangeError(`a virtual clock starts at a finite epoch time, got ${String(start)}`);
  }

  /** The virtual time (epoch ms). Bound, so it can be handed around as a `() => number`. */
  readonly now = (): number => this.time;

  /** Call `callback` once the clock has been advanced `ms` from now (at least 1 ms, as Node's timers do). */
  readonly setTimeout = (callback: () => void, ms: number): VirtualTimer => {
    const delay = Number.isFinite(ms) && ms >= 1 ? ms : 1;
    const timer = new VirtualTimer(this.time + delay, this.seq++, callback);
    // Sorted by (dueAt, seq): insertion after every timer due at or before this one.
    let low = 0;
    let high = this.timers.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.timers[mid].dueAt <= timer.dueAt) low = mid + 1;
      else high = mid;
    }
    this.timers.splice(low, 0, timer);
    return timer;
  };

  readonly clearTimeout = (timer: ClockTimer): void => {
    if (!(timer instanceof VirtualTimer) || timer.cancelled) return;
    timer.cancelled = true;
    const index = this.timers.indexOf(timer);
    if (index >= 0) this.timers.splice(index, 1);
  };

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.length;
  }

  /** When the next timer is due (epoch ms), or undefined when none waits. */
  nextAt(): number | undefined {
    return this.timers[0]?.dueAt;
  }

  /** Fire the timers already due at the current time (without moving it); returns how many fired. */
  runDue(): number {
    let fired = 0;
    while (this.timers.length > 0 && this.timers[0].dueAt <= this.time) {
      this.fire(this.timers.shift() as VirtualTimer);
      fired++;
    }
    return fired;
  }

  /**
   * Move the clock forward by `duration` ("1h", "10m", or ms), firing each
   * timer that falls due on the way at its own time, earliest first, and
   * awaiting `settle` after each (and before the first), so that work a
   * timer starts can set the next timers. Ends at exactly now + duration.
   */
  async advance(duration: Duration, settle: Settle = yieldTurns): Promise<void> {
    const target = this.time + toMilliseconds(duration);
    if (this.advancing)
      throw new Error(
        "the virtual clock is already being advanced: await the advance in progress before starting another",
      );
    this.advancing = true;
    try {
      await settle();
      while (this.timers.length > 0 && this.timers[0].dueAt <= target) {
        const timer = this.timers.shift() as VirtualTimer;
        if (timer.dueAt > this.time) this.time = timer.dueAt;
        this.fire(timer);
        await settle();
      }
      this.time = target;
      await settle();
    } finally {
      this.advancing = false;
    }
  }

  private fire(timer: VirtualTimer): void {
    timer.cancelled = true;
    timer.callback();
  }
}
