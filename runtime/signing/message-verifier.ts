import type { Envelope } from "../../broker/envelope.ts";
import { UnsignableHeaderError, envelopeLeaf } from "./canonical-envelope.ts";
import type { Ed25519 } from "./ed25519.ts";
import { PROOF_STEP_BYTES, stepUp } from "./merkle-batch.ts";
import { rootMessage } from "./message-signer.ts";
import type { PublicKey } from "./signing-keys.ts";
import { GenerationalMap } from "../generational-map.ts";

/**
 * Checks a signed envelope: a trusted key id, a signing time inside the
 * window, a proof that leads from the envelope's canonical bytes to a root,
 * and a signature of that root by the named key. The nodes of trees already
 * verified are cached with the key, the signature and the proof text above
 * them, so a message's walk stops at the first verified node whose proof
 * above matches its own, byte for byte: a batch of N costs one signature
 * check and about 2N hashes instead of N log2 N, and still no byte of any
 * message, proof or signature goes unchecked.
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
  /** Verified tree nodes remembered (a batch of N leaves has N - 1 inner nodes). Default 100,000. */
  readonly nodeCacheSize?: number;
  readonly now?: () => number;
}

export type Checked =
  | { readonly ok: true; readonly keyId: string; /** The message's leaf hash (latin1): what the replay guard remembers. */ readonly digest: string }
  | { readonly ok: false; readonly keyId: string; readonly reason: string };

interface VerifiedNode {
  readonly keyId: string;
  readonly signature: string;
  readonly above: string;
}

interface TrustedKey {
  readonly key: PublicKey;
  readonly verify: (message: Uint8Array, signature: Uint8Array) => boolean;
}

/** A proof step (33 bytes) is exactly 44 base64 characters, so the text of the proof above step k starts at 44 k. */
const STEP_CHARS = (PROOF_STEP_BYTES / 3) * 4;

/**
 * Decode base64 strictly: a string that is not the canonical encoding of its
 * bytes (a character outside the alphabet, which Buffer.from skips; a
 * url-safe one; stray bits in the last character) is refused, so no
 * character of it can change unnoticed.
 */
const strictBase64 = (text: string): Buffer | undefined => {
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? bytes : undefined;
};

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
    this.nodes = new GenerationalMap(Math.max(2, options.nodeCacheSize ?? 100_000));
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
    return trusted !== undefined && trusted.verify(message, signature);
  }

  get trustedKeyIds(): string[] {
    return [...this.trusted.keys()];
  }

  check(envelope: Envelope): Checked {
    const { headers } = envelope;
    const keyId = headers["sig.key"];
    if (typeof keyId !== "string") return { ok: false, keyId: "(none)", reason: "the message is not signed" };
    const trusted = this.trusted.get(keyId);
    if (trusted === undefined) return { ok: false, keyId, reason: `key ${keyId} is not trusted here (trusted: ${this.trustedKeyIds.join(", ") || "none"})` };
    const at = headers["sig.at"];
    if (typeof at !== "number" || !Number.isFinite(at)) return { ok: false, keyId, reason: "the message has no signing time (sig.at)" };
    const now = this.now();
    if (at - now > this.maxSkewMs) return { ok: false, keyId, reason: `signed ${at - now} ms in the future, beyond the allowed clock skew of ${this.maxSkewMs} ms` };
    const since = Math.max(at, envelope.eta ?? at);
    if (now - since > this.maxAgeMs) return { ok: false, keyId, reason: `signed ${now - since} ms ago, outside the window of ${this.maxAgeMs} ms` };
    const signatureText = headers["sig.root"];
    const proofText = headers["sig.proof"];
    if (typeof signatureText !== "string" || typeof proofText !== "string") return { ok: false, keyId, reason: "the signature or the proof header is missing" };
    const proof = strictBase64(proofText);
    if (proof === undefined) return { ok: false, keyId, reason: "the proof is not valid base64" };
    if (proof.length % PROOF_STEP_BYTES !== 0) return { ok: false, keyId, reason: "the proof is malformed" };
    let leaf: Buffer;
    try {
      leaf = envelopeLeaf(envelope);
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
        if (known !== undefined && known.keyId === keyId && known.signature === signatureText && known.above === proofText.slice(step * STEP_CHARS)) {
          // Verified through this node: the nodes walked below it are verified too, so the next message of the batch stops lower.
          this.remember(path, keyId, signatureText, proofText);
          return { ok: true, keyId, digest: leaf.toString("latin1") };
        }
        path.push(node);
      }
      if (step === steps) break;
      const up = stepUp(node, proof, step * PROOF_STEP_BYTES);
      if (up === undefined) return { ok: false, keyId, reason: "the proof is malformed" };
      node = up;
    }
    const signature = strictBase64(signatureText);
    if (signature === undefined || !trusted.verify(rootMessage(node), signature)) {
      return { ok: false, keyId, reason: `the signature does not match the message (altered in transit, or not signed by key ${keyId})` };
    }
    this.remember(path, keyId, signatureText, proofText);
    return { ok: true, keyId, digest: leaf.toString("latin1") };
  }

  /** Cache the nodes of a verified walk: path[i] is the node i + 1 steps up (or the leaf itself, alone, for a batch of one). */
  private remember(path: readonly Buffer[], keyId: string, signature: string, proofText: string): void {
    const first = proofText.length === 0 ? 0 : 1;
    for (let i = 0; i < path.length; i++) this.nodes.add(path[i].toString("latin1"), { keyId, signature, above: proofText.slice((i + first) * STEP_CHARS) });
  }
}
