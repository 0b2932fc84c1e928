// A Transport that signs what it publishes and lets through to its consumers
// only what verifies: the app wraps its broker in one when it is given
// signing options, so publisher, workflows and workers are unchanged.
//
// Publishing: envelopes published in one event-loop turn (up to `batchSize`)
// are signed together with the results stored in that turn, one signature
// per batch (see signing-batch.ts); each
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
import { SigningBatch } from "./signing-batch.ts";
import { HANDED_BACK, handBackOf, originalOf } from "./handed-back.ts";
import { KnownRoutes, type TrustedBinding } from "./known-routes.ts";
import { SignedRevocations } from "./signed-revocations.ts";
import type { Checked, MessageVerifier } from "./message-verifier.ts";
import { sealContext, type PayloadBox } from "./payload-box.ts";
import type { ReplayGuard } from "./replay/replay-guard.ts";
import type { SharedClaims } from "./replay/shared-claims.ts";
import { SignatureError, SigningConfigError, refusalMessage } from "./signing-errors.ts";

/** What a signed transport signs, checks and seals with, and where it reports what it refuses. */
export interface SignedTransportOptions {
  /** Signs outgoing envelopes; without one, publishing is refused (signed mode needs a key to send). */
  readonly signer?: BatchSigner;
  /** Checks incoming deliveries; without one, consuming is refused (signed mode needs trusted keys to run). */
  readonly verifier?: MessageVerifier;
  readonly replay: ReplayGuard;
  /** Claims of messages in a store the worker pool shares: a copy another process took is refused (shared-claims.ts). */
  readonly claims?: SharedClaims;
  /** Bindings made outside this app that its workers accept signed messages through (signing.bindings). */
  readonly bindings?: readonly TrustedBinding[];
  readonly box?: PayloadBox;
  /** The batch outgoing envelopes are signed in, shared with the app's results; one of `signer`'s own without it. */
  readonly batch?: SigningBatch;
  readonly log: (message: string) => void;
  /** Called for each refused delivery that is not what it claims, after it was dead-lettered; `error` makes its error. */
  readonly refused: (envelope: Envelope, error: () => SignatureError) => void;
}

/** A delivery handed on to the worker and not yet settled. */
interface Holding {
  readonly digest: string;
  readonly until: number;
  /** The body handed to the worker (its key in `delivered`). */
  readonly body: Uint8Array;
  /** Handed back to its queue by the worker (published again, then acknowledged): not settled for good. */
  handedBack: boolean;
}

/** What a delivered body (as handed to the worker) came from: the signed envelope as received. */
interface Delivered {
  readonly original: Envelope;
  readonly deliveryTag: number;
  readonly held: Map<number, Holding>;
}

type Verified = Extract<Checked, { ok: true }>;

export class SignedTransport implements Transport {
  /** Deliveries refused (dead-lettered without running) since start: forged, untrusted, outside the window, replayed, misrouted. */
  refusals = 0;
  /**
   * Bodies handed on and not yet settled. A Map rather than a WeakMap, emptied
   * as deliveries settle: a WeakMap entry per delivery cost the garbage
   * collector more than the rest of the bookkeeping.
   */
  private readonly delivered = new Map<Uint8Array, Delivered>();
  private readonly routes: KnownRoutes;
  private readonly revocations: SignedRevocations;
  private readonly batch: SigningBatch | undefined;

  constructor(
    readonly inner: Transport,
    private readonly options: SignedTransportOptions,
  ) {
    this.batch = options.batch ?? (options.signer === undefined ? undefined : new SigningBatch(options.signer));
    this.routes = new KnownRoutes(options.bindings);
    this.revocations = new SignedRevocations(inner, {
      ...(options.signer !== undefined ? { signer: options.signer } : {}),
      ...(options.verifier !== undefined ? { verifier: options.verifier } : {}),
      log: options.log,
    });
  }

  publish(envelope: Envelope, options?: PublishOptions): Promise<void> {
    const batch = this.batch;
    if (batch === undefined) {
      return Promise.reject(
        new SigningConfigError({
          reason: "this app has trusted keys but no signing key (signing.key), so it cannot publish in signed mode",
        }),
      );
    }
    const delivered = this.delivered.get(envelope.body);
    let sealed: Envelope;
    if (delivered !== undefined && delivered.original.id === envelope.id) {
      // A delivered message handed back to a queue: its original signed bytes go, wrapped, never signed anew.
      const holding = delivered.held.get(delivered.deliveryTag);
      if (holding !== undefined) holding.handedBack = true;
      sealed = handBackOf(delivered.original, envelope);
    } else
      sealed =
        this.options.box === undefined
          ? envelope
          : { ...envelope, body: this.options.box.seal(envelope.body, sealContext("args", envelope.id)) };
    let prepared: Prepared;
    try {
      prepared = batch.signer.prepare(sealed);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) =>
      batch.add(prepared, (signed) => this.inner.publish(signed, options).then(resolve, reject), reject),
    );
  }

  async consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer> {
    const verifier = this.options.verifier;
    if (verifier === undefined || verifier.trustedKeyIds.length === 0) {
      throw new SigningConfigError({
        reason:
          "a worker in signed mode needs trusted public keys (signing.trusted); refusing to consume rather than run unverified messages",
      });
    }
    const { replay, claims, box, log } = this.options;
    /** Deliveries handed on and not yet settled, by delivery tag. */
    const held = new Map<number, Holding>();
    let consumer: Consumer | undefined;
    let inner: Consumer | undefined;
    const early: Delivery[] = [];
    /**
     * Dead-letter a delivery that is not run. `failResult`: fail its task's
     * result too (a message that is not what it claims); not for a replay or a
     * misrouted copy of a genuine message, whose own delivery still runs.
     */
    const refuse = (delivery: Delivery, keyId: string, reason: string, failResult: boolean) => {
      const { envelope } = delivery;
      const task = typeof envelope.headers.task === "string" ? envelope.headers.task : "(unknown)";
      // Costs about what the failed check did: the error (with its stack) is made only if a result needs it.
      const message = refusalMessage(envelope.id, task, keyId, reason);
      this.refusals++;
      (inner as Consumer).nack(delivery.deliveryTag, { requeue: false, reason: message });
      log(`refused to the dead-letter queue of '${delivery.queue}': ${message}`);
      if (failResult)
        this.options.refused(envelope, () => new SignatureError({ id: envelope.id, task, keyId, reason }));
    };
    const handOn = (delivery: Delivery, original: Envelope, checked: Verified) => {
      let body = checked.body;
      if (box !== undefined) {
        const plain = box.open(body, sealContext("args", original.id));
        if (!(plain instanceof Uint8Array)) {
          replay.release(checked.digest, true, checked.until);
          return refuse(delivery, checked.keyId, plain.reason, true);
        }
        body = plain;
      }
      held.set(delivery.deliveryTag, { digest: checked.digest, until: checked.until, body, handedBack: false });
      this.delivered.set(body, { original, deliveryTag: delivery.deliveryTag, held });
      handler({ ...delivery, envelope: { ...original, body } });
    };
    /**
     * Run a delivery this process admitted once the pool's shared store says
     * no other process took it. A redelivery is the broker's own (the
     * process that held it did not settle it): it is not claimed again.
     */
    const claimThenHandOn = (delivery: Delivery, original: Envelope, verified: Verified, received: Verified) => {
      if (claims === undefined || delivery.redelivered) return handOn(delivery, original, verified);
      claims.claim(received.batch, received.member, verified.until, {
        taken: (first) => {
          if (first) return handOn(delivery, original, verified);
          replay.release(verified.digest, true, verified.until);
          refuse(
            delivery,
            verified.keyId,
            "a replay: another worker process of this pool has already taken this exact signed message",
            false,
          );
        },
        failed: (error) => {
          replay.release(verified.digest, false, verified.until);
          log(
            `returned message ${original.id} to queue '${delivery.queue}': the shared store could not say whether another worker process took it (${error instanceof Error ? error.message : String(error)})`,
          );
          (inner as Consumer).nack(delivery.deliveryTag, { requeue: true });
        },
      });
    };
    const receive = (delivery: Delivery) => {
      if (consumer === undefined) return void early.push(delivery);
      let original = delivery.envelope;
      let checked = verifier.check(original);
      if (!checked.ok) return refuse(delivery, checked.keyId, checked.reason, true);
      // Claimed in the pool by the bytes received: a handed-back wrapper is a new message, its original is not.
      const received = checked;
      if (original.headers[HANDED_BACK] === true) {
        // A wrapper a worker handed back: what runs is the original inside, checked as if it had just arrived.
        const unwrapped = originalOf(original, checked.body);
        if (!("id" in unwrapped)) return refuse(delivery, checked.keyId, unwrapped.reason, true);
        original = unwrapped;
        checked = verifier.check(original);
        if (!checked.ok) return refuse(delivery, checked.keyId, `handed back: ${checked.reason}`, true);
      }
      if (!this.routes.reaches(original, delivery.queue)) {
        const via = original.exchange === "" ? "the default exchange" : `exchange '${original.exchange}'`;
        return refuse(
          delivery,
          checked.keyId,
          `signed for ${via} with routing key '${original.routingKey}', which does not lead to queue '${delivery.queue}' (a binding this app did not make)`,
          false,
        );
      }
      const verified = checked;
      const admission = replay.admit(verified.digest, verified.until, delivery.redelivered);
      switch (admission.kind) {
        case "run":
          return claimThenHandOn(delivery, original, verified, received);
        case "replay":
          return refuse(delivery, verified.keyId, admission.reason, false);
        case "ran":
          log(`dropped a redelivery of message ${original.id}: this worker process has already run it`);
          return (inner as Consumer).ack(delivery.deliveryTag);
        case "wait":
          // The same message, taken back from a consumer that held it while this process still runs it: run at most once.
          void admission.settled.then((final) => {
            if (final) return (inner as Consumer).ack(delivery.deliveryTag);
            handOn(delivery, original, verified);
          });
      }
    };
    inner = await this.inner.consume(queue, receive, options);
    const settle = (deliveryTag: number, final: boolean) => {
      const holding = held.get(deliveryTag);
      if (holding === undefined) return;
      held.delete(deliveryTag);
      this.delivered.delete(holding.body);
      // Acknowledged after a hand-back: the message is not settled, its copy runs later.
      replay.release(holding.digest, final && !holding.handedBack, holding.until);
    };
    const live = inner;
    consumer = {
      tag: live.tag,
      queue: live.queue,
      ack(deliveryTag) {
        settle(deliveryTag, true);
        live.ack(deliveryTag);
      },
      nack(deliveryTag, how) {
        settle(deliveryTag, !how.requeue);
        live.nack(deliveryTag, how);
      },
      cancel: async () => {
        await live.cancel();
        for (const tag of [...held.keys()]) settle(tag, false);
      },
    };
    for (const delivery of early.splice(0)) receive(delivery);
    return consumer;
  }

  declareQueue(name: string, options?: QueueOptions): Promise<void> {
    return this.inner.declareQueue(name, options);
  }
  declareExchange(name: string, type: ExchangeType): Promise<void> {
    this.routes.declared(name, type);
    return this.inner.declareExchange(name, type);
  }
  bindQueue(queue: string, exchange: string, pattern: string): Promise<void> {
    this.routes.bind(queue, exchange, pattern);
    return this.inner.bindQueue(queue, exchange, pattern);
  }
  /** Revocations are signed, and only those a trusted key signed take effect here (signed-revocations.ts). */
  revoke(ids: readonly string[], options?: RevocationOptions): Promise<void> {
    return this.revocations.revoke(ids, options);
  }
  isRevoked(id: string): boolean {
    return this.revocations.isRevoked(id);
  }
  onRevoke(
    listener: (id: string, options: { readonly terminate: boolean; readonly ttlMs?: number }) => void,
  ): () => void {
    return this.revocations.onRevoke(listener);
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
    this.batch?.flush();
    this.revocations.close();
    await this.inner.close();
  }
}
