// A Transport that signs what it publishes and lets through to its consumers
// only what verifies: the app wraps its broker in one when it is given
// signing options, so publisher, workflows and workers are unchanged.
//
// Publishing: envelopes published in one event-loop turn (up to `batchSize`)
// are signed together, one signature per batch (see message-signer.ts); each
// publish resolves with the broker's confirm of its own envelope. With a
// payload box the body is sealed first, so the signature covers the sealed body.
//
// Consuming: a delivery with a missing, invalid or untrusted signature, one
// outside the time window, a replay, or a body that does not open is never
// handed on: it is dead-lettered with the reason, logged with its key id and
// task, and reported to `refused` (the app fails its result there).
import type { DeadLetter, Delivery, Envelope } from "../../broker/envelope.ts";
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
import type { BatchSigner, Prepared } from "./message-signer.ts";
import type { MessageVerifier } from "./message-verifier.ts";
import type { PayloadBox } from "./payload-box.ts";
import type { ReplayGuard } from "./replay-guard.ts";
import { SignatureError, SigningConfigError } from "./signing-errors.ts";

/** What a signed transport signs, checks and seals with, and where it reports what it refuses. */
export interface SignedTransportOptions {
  /** Signs outgoing envelopes; without one, publishing is refused (signed mode needs a key to send). */
  readonly signer?: BatchSigner;
  /** Checks incoming deliveries; without one, consuming is refused (signed mode needs trusted keys to run). */
  readonly verifier?: MessageVerifier;
  readonly replay: ReplayGuard;
  readonly box?: PayloadBox;
  /** Most envelopes signed under one signature. Default 128. */
  readonly batchSize?: number;
  readonly log: (message: string) => void;
  /** Called for each refused delivery, after it was dead-lettered. */
  readonly refused: (envelope: Envelope, error: SignatureError) => void;
}

interface Queued {
  readonly prepared: Prepared;
  readonly options: PublishOptions | undefined;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class SignedTransport implements Transport {
  private queued: Queued[] = [];
  private flushScheduled = false;
  private readonly batchSize: number;

  constructor(
    readonly inner: Transport,
    private readonly options: SignedTransportOptions,
  ) {
    this.batchSize = options.batchSize ?? 128;
  }

  publish(envelope: Envelope, options?: PublishOptions): Promise<void> {
    if (this.options.signer === undefined) {
      return Promise.reject(
        new SigningConfigError({
          reason: "this app has trusted keys but no signing key (signing.key), so it cannot publish in signed mode",
        }),
      );
    }
    const sealed =
      this.options.box === undefined ? envelope : { ...envelope, body: this.options.box.seal(envelope.body) };
    let prepared: Prepared;
    try {
      prepared = this.options.signer.prepare(sealed);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ prepared, options, resolve, reject });
      if (this.queued.length >= this.batchSize) this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    });
  }

  /** Sign and send what is queued. */
  private flush(): void {
    const batch = this.queued;
    if (batch.length === 0) return;
    this.queued = [];
    let signed: Envelope[];
    try {
      signed = (this.options.signer as BatchSigner).signBatch(batch.map((q) => q.prepared));
    } catch (error) {
      for (const q of batch) q.reject(error);
      return;
    }
    for (let i = 0; i < batch.length; i++)
      this.inner.publish(signed[i], batch[i].options).then(batch[i].resolve, batch[i].reject);
  }

  async consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer> {
    const verifier = this.options.verifier;
    if (verifier === undefined || verifier.trustedKeyIds.length === 0) {
      throw new SigningConfigError({
        reason:
          "a worker in signed mode needs trusted public keys (signing.trusted); refusing to consume rather than run unverified messages",
      });
    }
    const digests = new Map<number, string>();
    let consumer: Consumer | undefined;
    const early: Delivery[] = [];
    const refuse = (delivery: Delivery, keyId: string, reason: string) => {
      const { envelope } = delivery;
      const task = typeof envelope.headers.task === "string" ? envelope.headers.task : "(unknown)";
      const error = new SignatureError({ id: envelope.id, task, keyId, reason });
      (consumer as Consumer).nack(delivery.deliveryTag, { requeue: false, reason: error.message });
      this.options.log(`refused to the dead-letter queue of '${delivery.queue}': ${error.message}`);
      this.options.refused(envelope, error);
    };
    const receive = (delivery: Delivery) => {
      if (consumer === undefined) return void early.push(delivery);
      const checked = verifier.check(delivery.envelope);
      if (!checked.ok) return refuse(delivery, checked.keyId, checked.reason);
      if (!this.options.replay.admit(checked.digest, delivery.redelivered)) {
        return refuse(delivery, checked.keyId, "a replay: this worker has already received this exact signed message");
      }
      digests.set(delivery.deliveryTag, checked.digest);
      let body = checked.body;
      if (this.options.box !== undefined) {
        const plain = this.options.box.open(body);
        if (!(plain instanceof Uint8Array)) {
          digests.delete(delivery.deliveryTag);
          this.options.replay.release(checked.digest, true);
          return refuse(delivery, checked.keyId, plain.reason);
        }
        body = plain;
      }
      handler({ ...delivery, envelope: { ...delivery.envelope, body } });
    };
    const inner = await this.inner.consume(queue, receive, options);
    const settle = (deliveryTag: number, final: boolean) => {
      const digest = digests.get(deliveryTag);
      if (digest === undefined) return;
      digests.delete(deliveryTag);
      this.options.replay.release(digest, final);
    };
    consumer = {
      tag: inner.tag,
      queue: inner.queue,
      ack(deliveryTag) {
        settle(deliveryTag, true);
        inner.ack(deliveryTag);
      },
      nack(deliveryTag, how) {
        settle(deliveryTag, !how.requeue);
        inner.nack(deliveryTag, how);
      },
      cancel: async () => {
        await inner.cancel();
        for (const tag of [...digests.keys()]) settle(tag, false);
      },
    };
    for (const delivery of early.splice(0)) receive(delivery);
    return consumer;
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
  onConnectionLost(listener: (reason: string) => void): () => void {
    return this.inner.onConnectionLost?.(listener) ?? (() => {});
  }
  deadLetters(queue: string): Promise<readonly DeadLetter[]> {
    return this.inner.deadLetters(queue);
  }
  stats(queue: string): Promise<QueueStats> {
    return this.inner.stats(queue);
  }
  async close(): Promise<void> {
    this.flush();
    await this.inner.close();
  }
}
