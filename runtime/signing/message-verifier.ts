import { LRUCache } from "lru-cache";
import type { Envelope } from "../../broker/envelope.ts";
import { UnsignableHeaderError, canonicalBytes } from "./canonical-envelope.ts";
import type { Ed25519 } from "./ed25519.ts";
import { leafHash, rootFromProof } from "./merkle-batch.ts";
import { rootMessage } from "./message-signer.ts";
import type { PublicKey } from "./signing-keys.ts";

/**
 * Checks a signed envelope: a trusted key id, a signing time inside the
 * window, a proof that leads from the envelope's canonical bytes to a root,
 * and a signature of that root by the named key. Roots already verified are
 * cached (with the signature and key they were verified with), so a batch
 * of N costs one signature check and N hash walks of log2 N steps.
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
  /** Verified batch roots remembered. Default 10,000. */
  readonly rootCacheSize?: number;
  readonly now?: () => number;
}

export type Checked =
  | { readonly ok: true; readonly keyId: string; /** The message's leaf hash (latin1): what the replay guard remembers. */ readonly digest: string }
  | { readonly ok: false; readonly keyId: string; readonly reason: string };

interface TrustedKey {
  readonly key: PublicKey;
  readonly verify: (message: Uint8Array, signature: Uint8Array) => boolean;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decode base64 strictly: a string that is not the canonical encoding of its bytes is refused, so no character of it can change unnoticed. */
const strictBase64 = (text: string): Buffer | undefined => {
  if (!BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? bytes : undefined;
};

export class MessageVerifier {
  readonly maxAgeMs: number;
  readonly maxSkewMs: number;
  private trusted = new Map<string, TrustedKey>();
  private readonly roots: LRUCache<string, string>;
  private readonly now: () => number;

  constructor(
    keys: readonly PublicKey[],
    private readonly backend: Ed25519,
    options: VerifierOptions = {},
  ) {
    this.maxAgeMs = options.maxAgeMs ?? 60 * 60 * 1000;
    this.maxSkewMs = options.maxSkewMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.roots = new LRUCache({ max: options.rootCacheSize ?? 10_000 });
    this.trust(keys);
  }

  /** Replace the trusted keys (key rotation while running): messages signed by a key no longer listed are refused from now on. */
  trust(keys: readonly PublicKey[]): void {
    const next = new Map<string, TrustedKey>();
    for (const key of keys) next.set(key.keyId, { key, verify: this.backend.verifier(key.publicKey) });
    this.trusted = next;
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
    let canonical: Buffer;
    try {
      canonical = canonicalBytes(envelope);
    } catch (error) {
      if (!(error instanceof UnsignableHeaderError)) throw error;
      return { ok: false, keyId, reason: error.message };
    }
    const leaf = leafHash(canonical);
    const root = rootFromProof(leaf, proof);
    if (root === undefined) return { ok: false, keyId, reason: "the proof is malformed" };
    const rootKey = root.toString("latin1");
    const verifiedWith = `${keyId}:${signatureText}`;
    if (this.roots.get(rootKey) !== verifiedWith) {
      const signature = strictBase64(signatureText);
      if (signature === undefined || !trusted.verify(rootMessage(root), signature)) {
        return { ok: false, keyId, reason: `the signature does not match the message (altered in transit, or not signed by key ${keyId})` };
      }
      this.roots.set(rootKey, verifiedWith);
    }
    return { ok: true, keyId, digest: leaf.toString("latin1") };
  }
}
