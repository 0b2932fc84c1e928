// Starting the embedded broker's new consumers on the turn after `consume`, together.
import { TurnLatch } from "./turn-latch.ts";

/**
 * Consumers made during one event-loop turn, started together on the next,
 * so that the caller of `consume` holds its consumer before the first
 * delivery. While some wait, `started` is what a paced publisher waits for.
 *
 * @example
 * const attachments = new ConsumerAttachments<[EmbeddedConsumer, Queue]>(([consumer, queue]) => start(consumer, queue));
 * attachments.add([consumer, queue]); // started on the next turn
 */
export class ConsumerAttachments<C> {
  private waiting: { readonly consumers: C[]; readonly latch: TurnLatch } | undefined;

  constructor(private readonly start: (consumer: C) => void) {}

  add(consumer: C): void {
    if (this.waiting === undefined) {
      const waiting = { consumers: [] as C[], latch: new TurnLatch() };
      this.waiting = waiting;
      setImmediate(() => {
        this.waiting = undefined;
        for (const waiter of waiting.consumers) this.start(waiter);
        waiting.latch.release();
      });
    }
    this.waiting.consumers.push(consumer);
  }

  /** While consumers wait for the next turn: resolves once they have started. */
  get started(): Promise<void> | undefined {
    return this.waiting?.latch.released;
  }
}
