// When the embedded broker makes its deliveries: batched on a microtask, yielding to the event
// loop after a turn's budget, and telling paced senders when the deferred run has been made.
import { TurnLatch } from "./turn-latch.ts";

/** Deliveries per event-loop turn before the broker yields to timers and I/O. */
export const DEFAULT_TURN_BUDGET = 4096;

/**
 * Coalesces "there may be deliveries to make" signals into one pending run.
 * A run is queued as a microtask, so a burst of publishes is delivered in one
 * batch right after the publishing code yields; once a single event-loop turn
 * has made `turnBudget` deliveries (a handler that acks as soon as it
 * receives can keep the broker busy indefinitely) further runs wait for
 * `setImmediate`, so timers and I/O are never starved. `nextTurn` tells
 * a publisher when that deferred run has been made, so a producer in the same
 * process that awaits it is paced by its consumers instead of running ahead
 * of them for as long as it likes.
 *
 * @example
 * const drains = new DrainScheduler((budget) => deliverUpTo(budget), () => hasWork());
 * drains.schedule(); drains.schedule(); // one run
 */
export class DrainScheduler {
  private scheduled = false;
  private running = false;
  private stopped = false;
  private turnWork = 0;
  private turnResetPending = false;
  /** A run waits for `setImmediate` (this turn's budget is spent). */
  private deferred = false;
  private turnWaiter: TurnLatch | undefined;

  constructor(
    /** Makes at most `budget` deliveries and returns how many it made. */
    private readonly run: (budget: number) => number,
    /** Whether work remains after a run (then another is scheduled). */
    private readonly hasWork: () => boolean,
    private readonly turnBudget = DEFAULT_TURN_BUDGET,
  ) {}

  /** Ask for a run; a no-op when one is already pending or running (a running one picks up new work itself). */
  schedule(): void {
    if (this.scheduled || this.running || this.stopped) return;
    this.scheduled = true;
    if (this.turnWork < this.turnBudget) queueMicrotask(this.runNow);
    else {
      this.deferred = true;
      setImmediate(this.runAfterYield);
    }
  }

  /**
   * While a run waits for the next event-loop turn: a promise that resolves
   * once that run has been made (shared by every caller of the turn).
   * Undefined while deliveries keep up.
   */
  nextTurn(): Promise<void> | undefined {
    if (!this.deferred) return undefined;
    this.turnWaiter ??= new TurnLatch();
    return this.turnWaiter.released;
  }

  stop(): void {
    this.stopped = true;
    this.takeTurnWaiter()?.release();
  }

  /** Run again after `stop`, picking up the work that waited meanwhile. */
  resume(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.hasWork()) this.schedule();
  }

  private readonly runAfterYield = (): void => {
    this.turnWork = 0;
    // Taken before the run: a sender told to wait during it waits for the turn after.
    const waiter = this.takeTurnWaiter();
    try {
      this.runNow();
    } finally {
      waiter?.release();
    }
  };

  /** No run waits for the next turn any longer: hand over the latch of the senders that waited for one. */
  private takeTurnWaiter(): TurnLatch | undefined {
    this.deferred = false;
    const waiter = this.turnWaiter;
    this.turnWaiter = undefined;
    return waiter;
  }

  private readonly runNow = (): void => {
    this.scheduled = false;
    if (this.stopped) return;
    this.running = true;
    let done: number;
    try {
      done = this.run(Math.max(1, this.turnBudget - this.turnWork));
    } finally {
      this.running = false;
    }
    if (done > 0) {
      this.turnWork += done;
      if (!this.turnResetPending) {
        this.turnResetPending = true;
        setImmediate(this.resetTurn);
      }
    }
    if (this.hasWork()) this.schedule();
  };

  private readonly resetTurn = (): void => {
    this.turnResetPending = false;
    this.turnWork = 0;
  };
}
