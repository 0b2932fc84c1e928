/**
 * One side's heartbeat on a connection: every interval it sends a Ping,
 * unless nothing has been heard from the peer for three intervals, in which
 * case it declares the peer silent (once) and stops. Any bytes from the peer
 * count as proof of life (`heard()`). Client and node use the same one; it
 * knows nothing of sockets, so it is tested with a fake clock.
 *
 * @example
 * const heartbeat = new Heartbeat(5_000, { ping: () => writer.send(FrameType.Ping), silent: (ms) => close(`silent for ${ms} ms`) });
 * socket.on("data", () => heartbeat.heard());
 */
export interface HeartbeatActions {
  ping(): void;
  /** Nothing heard for more than three intervals: `silentMs` since the last bytes. */
  silent(silentMs: number): void;
}

/** How time passes, for tests. */
export interface HeartbeatClock {
  now(): number;
  every(ms: number, tick: () => void): { stop(): void };
}

const realClock: HeartbeatClock = {
  now: () => Date.now(),
  every: (ms, tick) => {
    const timer = setInterval(tick, ms);
    timer.unref();
    return { stop: () => clearInterval(timer) };
  },
};

/** A peer silent for more than this many intervals is gone. */
export const MISSED_BEATS = 3;

export class Heartbeat {
  private lastHeard: number;
  private timer: { stop(): void } | undefined;

  constructor(
    readonly intervalMs: number,
    private readonly actions: HeartbeatActions,
    private readonly clock: HeartbeatClock = realClock,
  ) {
    this.lastHeard = clock.now();
  }

  /** Start beating (idempotent). */
  start(): void {
    if (this.timer !== undefined) return;
    this.lastHeard = this.clock.now();
    this.timer = this.clock.every(this.intervalMs, () => this.beat());
  }

  /** Bytes arrived from the peer. */
  heard(): void {
    this.lastHeard = this.clock.now();
  }

  stop(): void {
    this.timer?.stop();
    this.timer = undefined;
  }

  private beat(): void {
    const silentMs = this.clock.now() - this.lastHeard;
    if (silentMs > this.intervalMs * MISSED_BEATS) {
      this.stop();
      this.actions.silent(silentMs);
    } else {
      this.actions.ping();
    }
  }
}
