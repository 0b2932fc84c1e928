/**
 * A Transport that passes everything to the one it wraps and notes each
 * message the broker accepts: the test app's record of what was sent, and
 * its count of publishes still awaiting the broker's confirm (work that
 * `drain` must wait for).
 */
import type { DeadLetter, Envelope } from "../../broker/envelope.ts";
import type {
  ConsumeOptions,
  Consumer,
  DeliveryHandler,
  ExchangeType,
  PublishOptions,
  QueueOptions,
  QueueStats,
  RevocationOptions,
  Transport,
} from "../../broker/transport.ts";

export class RecordingTransport implements Transport {
  /** Publishes not yet confirmed or refused. */
  inFlight = 0;

  constructor(
    readonly inner: Transport,
    private readonly accepted: (envelope: Envelope) => void,
  ) {}

  publish(envelope: Envelope, options?: PublishOptions): Promise<void> {
    this.inFlight++;
    return this.inner.publish(envelope, options).then(
      () => {
        this.inFlight--;
        this.accepted(envelope);
      },
      (error: unknown) => {
        this.inFlight--;
        throw error;
      },
    );
  }

  declareQueue(name: string, options?: QueueOptions): Promise<void> {
    return this.inner.declareQueue(name, options);
  }
  declareExchange(name: string, type: ExchangeType): Promise<void> {
    return this.inner.declareExchange(name, type);
  }
  bindQueue(queue: string, exchange: string, pattern: string): Promise<void> {
    return this.inner.bindQueue(queue, exchange, pattern);
  }
  consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer> {
    return this.inner.consume(queue, handler, options);
  }
  revoke(ids: readonly string[], options?: RevocationOptions): Promise<void> {
    return this.inner.revoke(ids, options);
  }
  isRevoked(id: string): boolean {
    return this.inner.isRevoked(id);
  }
  onRevoke(
    listener: (id: string, options: { readonly terminate: boolean; readonly ttlMs?: number }) => void,
  ): () => void {
    return this.inner.onRevoke(listener);
  }
  deadLetters(queue: string): Promise<readonly DeadLetter[]> {
    return this.inner.deadLetters(queue);
  }
  stats(queue: string): Promise<QueueStats> {
    return this.inner.stats(queue);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
