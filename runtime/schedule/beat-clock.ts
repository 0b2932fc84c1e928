// The clock a beat runs on: the app's clock by default, ManualClock (advanced by hand) in
// tests, so a test of a daily schedule takes no day.
import type { Clock } from "../../broker/clock.ts";

/**
 * The time a beat runs on: the wall clock by default, a virtual one in tests
 * (advanced by hand, so a test of a daily schedule takes no day).
 *
 * @example
 * const clock: BeatClock = new ManualClock(Date.parse("2026-03-29T00:00:00Z"));
 * app.beat({ clock });
 */
export interface BeatClock {
  now(): number;
  /** Resolve after `ms` (or at once when `signal` aborts). */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** A beat clock on an app's clock (AppOptions.clock): a virtual one in `celerity/testing` moves the beat too. */
export const beatClockOf = (clock: Clock): BeatClock => ({
  now: () => clock.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const timer = clock.setTimeout(done, Math.max(0, ms));
      function done() {
        clock.clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    }),
});

export const systemClock: BeatClock = {
  now: Date.now,
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, ms));
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    }),
};

/**
 * A clock that moves only when told: `advance` wakes every sleeper whose
 * time has come, in order.
 *
 * @example
 * const clock = new ManualClock(Date.parse("2026-03-28T00:00:00Z"));
 * const beat = app.beat({ clock });
 * await clock.advance(60_000);
 */
export class ManualClock implements BeatClock {
  private sleepers: { at: number; wake: () => void }[] = [];

  constructor(private time: number) {}

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const sleeper = {
        at: this.time + Math.max(0, ms),
        wake: () => {
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          signal.removeEventListener("abort", sleeper.wake);
          resolve();
        },
      };
      this.sleepers.push(sleeper);
      signal.addEventListener("abort", sleeper.wake, { once: true });
    });
  }

  /** Move the time on by `ms`, waking sleepers as their time comes. */
  async advance(ms: number): Promise<void> {
    this.time += ms;
    for (const sleeper of [...this.sleepers].sort((a, b) => a.at - b.at)) if (sleeper.at <= this.time) sleeper.wake();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
