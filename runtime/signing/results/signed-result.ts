/**
 * A task's result value as a signed record. A worker in signed mode stores
 * each SUCCESS value signed with its own key, bound to the task id, the task
 * name and the state; a reader (a workflow about to send the next step with
 * it, a chord callback being built, `get()`) verifies it before the value is
 * used, so a value written into the store by anyone without a trusted key,
 * or moved there from another task, is never taken for a result.
 *
 * Results are signed like messages, in the app's signing batch with its
 * messages, one signature per event-loop turn (signing-batch.ts), as a record that could
 * never pass for a message: it names its role (`sig.role: "result"`), which
 * the message verifier refuses. Reading one costs about two hashes once the
 * batch's signature was checked (the verifier caches verified tree nodes).
 *
 * Stored value layout:
 *   "csr1" | signing time (f64 big-endian) | key id (8 bytes) | payload | signature trailer
 * where the payload is the encoded value, or the sealed one with encryption.
 *
 * @example
 * const stored = await new ResultSigner(batch).sign(id, task, encoded);
 * const read = readSignedResult(verifier, { id, task, value: stored }); // { ok: true, payload }
 */
import type { Envelope } from "../../../broker/envelope.ts";
import type { Prepared } from "../message-signer.ts";
import type { MessageVerifier } from "../message-verifier.ts";
import type { SigningBatch } from "../signing-batch.ts";

const MAGIC = Buffer.from("csr1", "latin1");
const KEY_ID_BYTES = 8;
const HEADER_BYTES = MAGIC.length + 8 + KEY_ID_BYTES;
export const RESULT_ROLE = "result";

/** The record a result's signature covers: its id, task and state, then the payload. */
const resultEnvelope = (id: string, task: string, body: Uint8Array, signedAt?: number, keyId?: string): Envelope => ({
  id,
  exchange: "",
  routingKey: "",
  priority: 0,
  headers: {
    task,
    "sig.role": RESULT_ROLE,
    "sig.state": "SUCCESS",
    ...(signedAt !== undefined ? { "sig.at": signedAt, "sig.key": keyId } : {}),
  },
  body,
});

/** Signs result values through the app's signing batch, so they share its signatures (signing-batch.ts). */
export class ResultSigner {
  constructor(private readonly batch: SigningBatch) {}

  /** The value to store for task `id`'s SUCCESS: `payload`, signed. */
  sign(id: string, task: string, payload: Uint8Array): Promise<Uint8Array> {
    let prepared: Prepared;
    try {
      prepared = this.batch.signer.prepare(resultEnvelope(id, task, payload));
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => this.batch.add(prepared, (signed) => resolve(storedValue(signed)), reject));
  }
}

/** The stored layout of a signed result record. */
const storedValue = ({ headers, body }: Envelope): Uint8Array => {
  const stored = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  MAGIC.copy(stored, 0);
  stored.writeDoubleBE(headers["sig.at"] as number, MAGIC.length);
  stored.write(headers["sig.key"] as string, MAGIC.length + 8, KEY_ID_BYTES, "hex");
  stored.set(body, HEADER_BYTES);
  return stored;
};

export type ReadResult =
  | { readonly ok: true; readonly keyId: string; readonly payload: Uint8Array }
  | { readonly ok: false; readonly keyId: string; readonly reason: string };

/** The payload of a stored SUCCESS value if a trusted key signed it for this task id and name; else why not. */
export const readSignedResult = (
  verifier: MessageVerifier,
  record: { readonly id: string; readonly task: string; readonly value?: Uint8Array },
): ReadResult => {
  const { value } = record;
  if (value === undefined) return { ok: false, keyId: "(none)", reason: "it is recorded SUCCESS with no value" };
  if (value.length < HEADER_BYTES || !MAGIC.equals(value.subarray(0, MAGIC.length)))
    return { ok: false, keyId: "(none)", reason: "the value is not signed" };
  const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const signedAt = bytes.readDoubleBE(MAGIC.length);
  const keyId = bytes.toString("hex", MAGIC.length + 8, HEADER_BYTES);
  const checked = verifier.checkStored(
    resultEnvelope(record.id, record.task, value.subarray(HEADER_BYTES), signedAt, keyId),
    RESULT_ROLE,
  );
  if (!checked.ok)
    return {
      ok: false,
      keyId,
      reason: `${checked.reason} (not the value a trusted worker stored for this task: forged, altered, or moved from another record)`,
    };
  return { ok: true, keyId, payload: checked.body };
};
