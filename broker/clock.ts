/**
 * The time source every time-dependent part reads: eta and countdown in the
 * broker's delay scheduler, expiry, revocation ttl, retry backoff, time
 * limits, rate-limit buckets. It is passed through options with the system
 * clock as default, so a test can hand in a virtual clock
 * (`runtime/testing/virtual-clock.ts`) and nothing patches globals.
 *
 * @example
 * const broker = new EmbeddedBroker({ clock: systemClock });
 * const timer = systemClock.setTimeout(() => console.log("due"), 1_000);
 * systemClock.clearTimeout(timer);
 */
export interface Clock {
  /** The time, in epoch milliseconds. */
  now(): number;
  /** Call `callback` once, `ms` milliseconds from now. */
  setTimeout(callback: () => void, ms: number): ClockTimer;
  /** Cancel a timer this clock made; a timer already fired or cancelled is ignored. */
  clearTimeout(timer: ClockTimer): void;
}

/**
 * A timer a clock made. Whether it keeps the process alive matters only on the system clock (Node's own timers).
 *
 * @example
 * const timer = clock.setTimeout(() => flush(), 100);
 * timer.unref(); // do not keep the process alive for it
 */
export interface ClockTimer {
  ref(): unknown;
  unref(): unknown;
}

/**
 * Real time: `Date.now` and Node's timers.
 *
 * @example
 * const app = createApp({ clock: systemClock }); // the default
 */
export const systemClock: Clock = {
  now: Date.now,
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/**
 * The clock's `now` as a function to keep and call on its own: the system
 * clock's is `Date.now` itself (no extra call on the hot path); any other
 * clock's is called as its method, so a class clock keeps its `this`.
 */
export const nowOf = (clock: Clock): (() => number) => (clock === systemClock ? Date.now : () => clock.now());

/** The clock named by options that may give a whole clock or only its `now` (which wins, as the older option). */
export const clockOf = (options: { readonly clock?: Clock; readonly now?: () => number }): Clock => {
  const clock = options.clock ?? systemClock;
  if (options.now === undefined || options.now === clock.now) return clock;
  const now = options.now;
  return {
    now,
    setTimeout: (callback, ms) => clock.setTimeout(callback, ms),
    clearTimeout: (timer) => clock.clearTimeout(timer),
  };
};

/**
 * A callback that runs every so often on a clock until stopped.
 *
 * @example
 * const sweep = repeatEvery(clock, 100, () => expire());
 * sweep.stop();
 */
export interface RepeatingTimer {
  stop(): void;
}

/**
 * Call `callback` every `ms` on `clock` until stopped, without keeping the
 * process alive. On the system clock this is one Node interval; on another
 * clock each run arms the next, so a virtual clock runs it once per `ms` it
 * is advanced.
 */
export const repeatEvery = (clock: Clock, ms: number, callback: () => void): RepeatingTimer => {
  if (clock === systemClock) {
    const interval = setInterval(callback, ms);
    interval.unref();
    return { stop: () => clearInterval(interval) };
  }
  let stopped = false;
  let timer: ClockTimer;
  const arm = (): void => {
    timer = clock.setTimeout(() => {
      if (stopped) return;
      arm();
      callback();
    }, ms);
    timer.unref();
  };
  arm();
  return {
    stop: () => {
      stopped = true;
      clock.clearTimeout(timer);
    },
  };
};
