// The settings of the embedded broker (clock, delivery limits, revocation memory, error
// sink, journal), every one optional; their defaults are applied by the broker.
import type { Clock } from "../clock.ts";
import type { BrokerJournal } from "./broker-journal.ts";

/**
 * Settings of an EmbeddedBroker; every field is optional.
 *
 * @example
 * const broker = createEmbeddedBroker({ defaultMaxDeliveries: 5 });
 */
export interface EmbeddedBrokerOptions {
  /** The clock for eta (its timer too), expiry, revocation ttl and dead-letter timestamps. Default the system clock. */
  readonly clock?: Clock;
  /** Only the clock's time (epoch ms), read with the system clock's timers. Default `clock.now`. */
  readonly now?: () => number;
  /** `maxDeliveries` of a queue declared without one. Default 16. */
  readonly defaultMaxDeliveries?: number;
  /** How long a revocation is remembered when `revoke` names no ttl. Default one day. */
  readonly revocationTtlMs?: number;
  /** At most this many revocations are remembered (oldest forgotten first). Default 100 000. */
  readonly maxRevocations?: number;
  /**
   * Most dead letters a dead-letter queue keeps; past it, the next in line
   * (the oldest of the highest priority) is dropped for each new one, so a
   * flood of refused messages cannot fill the broker. Default 10,000.
   */
  readonly maxDeadLetters?: number;
  /** Most bytes of message bodies a dead-letter queue keeps, dropped the same way. Default 64 MiB. */
  readonly maxDeadLetterBytes?: number;
  /** Receives failures of consumer handlers and revocation listeners. Default: console.error. */
  readonly onError?: (error: unknown, context: string) => void;
  /**
   * A publish into a queue that holds 1,024 ready messages (a quarter of a turn's deliveries),
   * made while the broker waits for the next event-loop turn to deliver more
   * (or to attach a consumer made this turn), confirms on that turn, after
   * those deliveries: a producer in the same process that awaits its confirms
   * then gives its consumers (and timers and I/O) their turn rather than
   * filling the queue for as long as it sends. Default true; the broker node,
   * whose producers are paced by the network, turns it off.
   */
  readonly paceSenders?: boolean;
  /** Told of every change of state (see BrokerJournal); used by the durable node. */
  readonly journal?: BrokerJournal;
}
