/**
 * The one queue of things waiting for a signature: an app's outgoing
 * messages and the result values its workers store, prepared one by one as
 * they are made and signed together, those of one event-loop turn (up to
 * `batchSize`) under one signature over a Merkle root (message-signer.ts).
 * Messages and results share a batch: a result's record names its role
 * (`sig.role`), so a leaf of one can never pass for the other, and a worker
 * that stores a result and publishes the next step in the same turn signs once.
 *
 * @example
 * const batch = new SigningBatch(signer, 128);
 * batch.add(signer.prepare(envelope), (signed) => transport.publish(signed), (error) => fail(error));
 */
import type { Envelope } from "../../broker/envelope.ts";
import type { BatchSigner, Prepared } from "./message-signer.ts";

/** Told the signed envelope, with its trailer. */
export type OnSigned = (signed: Envelope) => void;
/** Told why the batch could not be signed. */
export type OnSigningFailed = (error: unknown) => void;

export class SigningBatch {
  private prepared: Prepared[] = [];
  private onSigned: OnSigned[] = [];
  private onFailed: OnSigningFailed[] = [];
  private flushScheduled = false;

  constructor(
    readonly signer: BatchSigner,
    private readonly batchSize = 128,
  ) {}

  /** Queue `prepared` for the next signature; `signed` or `failed` is called once it is made. */
  add(prepared: Prepared, signed: OnSigned, failed: OnSigningFailed): void {
    this.prepared.push(prepared);
    this.onSigned.push(signed);
    this.onFailed.push(failed);
    if (this.prepared.length >= this.batchSize) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  /** Sign what is queued now. */
  flush(): void {
    const prepared = this.prepared;
    if (prepared.length === 0) return;
    const onSigned = this.onSigned;
    const onFailed = this.onFailed;
    this.prepared = [];
    this.onSigned = [];
    this.onFailed = [];
    let signed: Envelope[];
    try {
      signed = this.signer.signBatch(prepared);
    } catch (error) {
      for (const failed of onFailed) failed(error);
      return;
    }
    for (let i = 0; i < signed.length; i++) onSigned[i](signed[i]);
  }
}
