/**
 * Revocations in signed mode. The broker node announces every revocation to
 * every connected process, whoever asked for it; a worker in signed mode acts
 * (records a task REVOKED, aborts it with `terminate`) only on revocations a
 * trusted key signed. An app revoking in signed mode sends, with the ids, one
 * more entry: a token carrying the ids, the terminate flag, the time and the
 * app's signature over them. Workers verify the token when the node announces
 * it and then treat its ids as revoked; ids the node announces without a
 * valid token are left to the broker (which still drops queued copies: what
 * the node's admin token protects, see docs/broker-node.md).
 *
 * @example
 * const revocations = new SignedRevocations(inner, { signer, verifier, log });
 * await revocations.revoke(["3f0c…"], { terminate: true });
 * revocations.isRevoked("3f0c…"); // true once the node announced it
 */
import { Codec } from "../../broker/codec.ts";
import type { RevocationOptions, Transport } from "../../broker/transport.ts";
import { SigningConfigError } from "./signing-errors.ts";
import type { BatchSigner } from "./message-signer.ts";
import type { MessageVerifier } from "./message-verifier.ts";

/** Marks the entry among a revocation's ids that carries its signature. */
export const SIGNED_REVOCATION_PREFIX = "celerity.signed-revocation:";
const DOMAIN = "celerity/revocation/1\0";
const DEFAULT_TTL_MS = 24 * 60 * 60 * 1000;

const codec = new Codec();

/** The bytes a revocation's signature covers. */
const revocationMessage = (ids: readonly string[], terminate: boolean, at: number): Uint8Array =>
  codec.encode([DOMAIN, ids, terminate, at], "revocation");

type Listener = (id: string, options: { readonly terminate: boolean; readonly ttlMs?: number }) => void;

export interface SignedRevocationsOptions {
  readonly signer?: BatchSigner;
  readonly verifier?: MessageVerifier;
  readonly log: (message: string) => void;
  readonly now?: () => number;
}

export class SignedRevocations {
  /** Ids revoked by a verified revocation, with when that revocation lapses. */
  private readonly revoked = new Map<string, number>();
  private readonly listeners = new Set<Listener>();
  private unsubscribe: (() => void) | undefined;
  private readonly now: () => number;

  constructor(
    private readonly inner: Transport,
    private readonly options: SignedRevocationsOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Revoke `ids` with a signed token beside them. */
  revoke(ids: readonly string[], options: RevocationOptions = {}): Promise<void> {
    const { signer } = this.options;
    if (signer === undefined)
      return Promise.reject(
        new SigningConfigError({
          reason: "this app has no signing key (signing.key), so its revocations would not be signed",
        }),
      );
    this.listen();
    const terminate = options.terminate ?? false;
    const at = this.now();
    const signature = signer.signDetached(revocationMessage(ids, terminate, at));
    const token = Buffer.from(codec.encode([signer.keyId, at, terminate, ids, signature], "revocation")).toString(
      "base64url",
    );
    return this.inner.revoke([...ids, `${SIGNED_REVOCATION_PREFIX}${token}`], options);
  }

  isRevoked(id: string): boolean {
    this.listen();
    const until = this.revoked.get(id);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.revoked.delete(id);
    return false;
  }

  onRevoke(listener: Listener): () => void {
    this.listen();
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.unsubscribe?.();
  }

  private listen(): void {
    this.unsubscribe ??= this.inner.onRevoke((id, options) => {
      if (id.startsWith(SIGNED_REVOCATION_PREFIX)) this.announced(id.slice(SIGNED_REVOCATION_PREFIX.length), options);
    });
  }

  /** A signed revocation's token reached this process: act on its ids if a trusted key signed them. */
  private announced(token: string, options: { readonly ttlMs?: number }): void {
    const { verifier, log } = this.options;
    let decoded: unknown;
    try {
      decoded = codec.decode(Buffer.from(token, "base64url"));
    } catch {
      return log("ignored a revocation whose signature cannot be read");
    }
    const [keyId, at, terminate, ids, signature] = Array.isArray(decoded) ? decoded : [];
    if (
      typeof keyId !== "string" ||
      typeof at !== "number" ||
      typeof terminate !== "boolean" ||
      !Array.isArray(ids) ||
      !ids.every((id) => typeof id === "string") ||
      !(signature instanceof Uint8Array)
    )
      return log("ignored a revocation whose signature cannot be read");
    if (verifier === undefined || !verifier.verifyDetached(keyId, revocationMessage(ids, terminate, at), signature))
      return log(`ignored a revocation of ${ids.length} task(s) not signed by a trusted key (key ${keyId})`);
    const until = this.now() + (options.ttlMs ?? DEFAULT_TTL_MS);
    for (const id of ids as string[]) {
      this.revoked.set(id, until);
      for (const listener of this.listeners)
        listener(id, { terminate, ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}) });
    }
  }
}
