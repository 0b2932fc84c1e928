// Checks a signed envelope: a trusted key id, a signing time inside the
// window, a proof that leads from the envelope's canonical bytes to a root,
// and a signature of that root by the named key. The nodes of trees already
// verified are cached with the key, the signature and the proof text above
// them, so a message's walk stops at the first verified node whose proof
// above matches its own, byte for byte: a batch of N costs one signature
// check and about 2N hashes instead of N log2 N, and still no byte of any
// message, proof or signature goes unchecked.
import type { Envelope } from "../../broker/envelope.ts";
import { UnsignableHeaderError, envelopeLeaf } from "./proofs/canonical-envelope.ts";
import type { Ed25519 } from "./ed25519.ts";
import { PROOF_STEP_BYTES, stepUp } from "./proofs/merkle-batch.ts";
import { readTrailer } from "./proofs/signature-trailer.ts";
import { rootMessage } from "./message-signer.ts";
import type { PublicKey } from "./signing-keys.ts";
import { GenerationalMap } from "../results/generational-map.ts";

/**
 * The time window a verifier accepts, and how many verified tree nodes it remembers.
 *
 * @example
 * const verifier = new MessageVerifier(readPublicKeys(["./keys/*.pub"]), defaultEd25519());
 * const checked = verifier.check(delivery.envelope);
 * if (!checked.ok) console.error(checked.reason);
 */
export interface VerifierOptions {
  /** A message older than this (from its signing time, or its eta if later) is refused. Default one hour. */
  readonly maxAgeMs?: number;
  /** A message signed this far in the future (clock skew) is still accepted. Default 30 s. */
  readonly maxSkewMs?: number;
  /** Verified tree nodes remembered (a batch of N leaves has N - 1 inner nodes; only batches still being consumed need to be held). Default 16,384. */
  readonly nodeCacheSize?: number;
  readonly now?: () => number;
}

export type Checked =
  | {
      readonly ok: true;
      readonly keyId: string;
      /** The message's leaf hash (latin1): what the replay guard remembers. */
      readonly digest: string;
      /** The root of the signed batch the message came in (base64url): with `member`, what a worker pool claims it by. */
      readonly batch: string;
      /** The message within its batch: the first 48 bits of its leaf hash, as a number. */
      readonly member: number;
      /** The body as published, without the signature trailer. */
      readonly body: Uint8Array;
      /** Epoch ms after which this message falls outside the window (for a stored record: never). */
      readonly until: number;
    }
  | { readonly ok: false; readonly keyId: string; readonly reason: string };

interface VerifiedNode {
  readonly keyId: string;
  readonly signature: Buffer;
  /** The proof of the walk that verified the node; its steps from `from` on lead from the node to the root. */
  readonly proof: Buffer;
  readonly from: number;
  /** The root the walk led to (base64url). */
  readonly root: string;
}

/** Whether `proof` from byte `at` on is the proof above `known`, byte for byte. */
const sameSteps = (known: VerifiedNode, proof: Uint8Array, at: number): boolean =>
  known.proof.length - known.from === proof.length - at &&
  known.proof.compare(proof, at, proof.length, known.from) === 0;

const verified = (keyId: string, leaf: Buffer, batch: string, body: Uint8Array, until: number): Checked => ({
  ok: true,
  keyId,
  digest: leaf.toString("latin1"),
  batch,
  member: leaf.readUIntBE(0, 6),
  body,
  until,
});

interface TrustedKey {
  readonly key: PublicKey;
  readonly verify: (message: Uint8Array, signature: Uint8Array) => boolean;
}

export class MessageVerifier {
  readonly maxAgeMs: number;
  readonly maxSkewMs: number;
  private trusted = new Map<string, TrustedKey>();
  /** Tree nodes (roots included) of batches already verified, with the key, the signature and the proof text above them. */
  private readonly nodes: GenerationalMap<string, VerifiedNode>;
  private readonly now: () => number;

  constructor(
    keys: readonly PublicKey[],
    private readonly backend: Ed25519,
    options: VerifierOptions = {},
  ) {
    this.maxAgeMs = options.maxAgeMs ?? 60 * 60 * 1000;
    this.maxSkewMs = options.maxSkewMs ?? 30_000;
    this.now = options.now ?? Date.now;
    // Forgotten in bulk, oldest first (see GenerationalMap): a cache miss costs only a longer walk and one signature check.
    this.nodes = new GenerationalMap(Math.max(2, options.nodeCacheSize ?? 16_384));
    this.trust(keys);
  }

  /** Replace the trusted keys (key rotation while running): messages signed by a key no longer listed are refused from now on. */
  trust(keys: readonly PublicKey[]): void {
    const next = new Map<string, TrustedKey>();
    for (const key of keys) next.set(key.keyId, { key, verify: this.backend.verifier(key.publicKey) });
    this.trusted = next;
  }

  /** Whether `signature` is `keyId`'s signature of `message` (for what is signed whole, such as a workflow graph); false for an untrusted key. */
  verifyDetached(keyId: string, message: Uint8Array, signature: Uint8Array): boolean {
    const trusted = this.trusted.get(keyId);
    return trusted?.verify(message, signature) ?? false;
  }

  get trustedKeyIds(): string[] {
    return [...this.trusted.keys()];
  }

  /** The trusted key that signed `envelope` (header `sig.key`), or the refusal naming why there is none. */
  private signerOf(envelope: Envelope, what: string): { keyId: string; trusted: TrustedKey } | Checked {
    const keyId = envelope.headers["sig.key"];
    if (typeof keyId !== "string") return { ok: false, keyId: "(none)", reason: `the ${what} is not signed` };
    const trusted = this.trusted.get(keyId);
    if (trusted === undefined)
      return {
        ok: false,
        keyId,
        reason: `key ${keyId} is not trusted here (trusted: ${this.trustedKeyIds.join(", ") || "none"})`,
      };
    return { keyId, trusted };
  }

  check(envelope: Envelope): Checked {
    const signer = this.signerOf(envelope, "message");
    if ("ok" in signer) return signer;
    const { keyId, trusted } = signer;
    const { headers } = envelope;
    const at = headers["sig.at"];
    if (typeof at !== "number" || !Number.isFinite(at))
      return { ok: false, keyId, reason: "the message has no signing time (sig.at)" };
    const now = this.now();
    if (at - now > this.maxSkewMs)
      return {
        ok: false,
        keyId,
        reason: `signed ${at - now} ms in the future, beyond the allowed clock skew of ${this.maxSkewMs} ms`,
      };
    const since = Math.max(at, envelope.eta ?? at);
    if (now - since > this.maxAgeMs)
      return { ok: false, keyId, reason: `signed ${now - since} ms ago, outside the window of ${this.maxAgeMs} ms` };
    if (headers["sig.role"] !== undefined)
      return { ok: false, keyId, reason: `a signed ${String(headers["sig.role"])} record, not a message` };
    return this.checkProof(envelope, keyId, trusted, since + this.maxAgeMs);
  }

  /**
   * Check a signed record kept in a store (a task's result): a trusted key,
   * and a proof and signature over its bytes, but no time window (a result
   * is read long after it was written). The record must name `role`
   * (header `sig.role`), so a message cannot pass for a record or the reverse.
   */
  checkStored(envelope: Envelope, role: string): Checked {
    const signer = this.signerOf(envelope, "record");
    if ("ok" in signer) return signer;
    const { keyId, trusted } = signer;
    if (envelope.headers["sig.role"] !== role) return { ok: false, keyId, reason: `not a signed ${role}` };
    return this.checkProof(envelope, keyId, trusted, Number.POSITIVE_INFINITY);
  }

  private checkProof(envelope: Envelope, keyId: string, trusted: TrustedKey, until: number): Checked {
    const trailer = readTrailer(envelope.body);
    if (trailer === undefined) return { ok: false, keyId, reason: "the body carries no signature trailer" };
    const { body, proof, signature } = trailer;
    let leaf: Buffer;
    try {
      leaf = envelopeLeaf(envelope, body);
    } catch (error) {
      if (!(error instanceof UnsignableHeaderError)) throw error;
      return { ok: false, keyId, reason: error.message };
    }
    // Walk up; stop at a node already verified under this key and signature with the same proof above it.
    const steps = proof.length / PROOF_STEP_BYTES;
    const path: Buffer[] = [];
    let node = leaf;
    for (let step = 0; ; step++) {
      if (step > 0 || steps === 0) {
        const known = this.nodes.get(node.toString("latin1"));
        if (
          known !== undefined &&
          known.keyId === keyId &&
          known.signature.equals(signature) &&
          sameSteps(known, proof, step * PROOF_STEP_BYTES)
        ) {
          // Verified through this node: the nodes walked below it are verified too, so the next message of the batch stops lower.
          this.remember(path, keyId, known.signature, proof, known.root);
          return verified(keyId, leaf, known.root, body, until);
        }
        path.push(node);
      }
      if (step === steps) break;
      const up = stepUp(node, proof, step * PROOF_STEP_BYTES);
      if (up === undefined) return { ok: false, keyId, reason: "the proof is malformed" };
      node = up;
    }
    if (!trusted.verify(rootMessage(node), signature)) {
      return {
        ok: false,
        keyId,
        reason: `the signature does not match the message (altered in transit, or not signed by key ${keyId})`,
      };
    }
    const root = node.toString("base64url");
    this.remember(path, keyId, Buffer.from(signature), proof, root);
    return verified(keyId, leaf, root, body, until);
  }

  /**
   * Cache the nodes of a verified walk: path[i] is the node i + 1 steps up (or
   * the leaf itself, alone, for a batch of one). `signature` is a copy (the
   * batch's own, or a cached node's), never a view into a delivered body.
   */
  private remember(path: readonly Buffer[], keyId: string, signature: Buffer, proof: Uint8Array, root: string): void {
    if (path.length === 0) return;
    const first = proof.length === 0 ? 0 : 1;
    // One copy per walk, shared by its nodes: the delivered body the views point into is not kept alive.
    const proofCopy = Buffer.from(proof);
    for (let i = 0; i < path.length; i++) {
      this.nodes.add(path[i].toString("latin1"), {
        keyId,
        signature,
        proof: proofCopy,
        from: (i + first) * PROOF_STEP_BYTES,
        root,
      });
    }
  }
}
