// The `signing` option of createApp, and what it sets up: keys read, the signed transport
// around the broker, the protected result store, refused messages failed in the store.
import { nowOf, systemClock, type Clock } from "../../broker/clock.ts";
import type { Envelope } from "../../broker/envelope.ts";
import type { Transport } from "../../broker/transport.ts";
import { READY_STATES } from "../../dsl/result.ts";
import { toErrorInfo } from "../errors.ts";
import { DurableResultStore } from "../results/durable/durable-result-store.ts";
import { MemoryResultStore, type ResultStore } from "../results/result-store.ts";
import { defaultEd25519, type Ed25519 } from "./ed25519.ts";
import { BatchSigner } from "./message-signer.ts";
import { MessageVerifier } from "./message-verifier.ts";
import { PayloadBox, readBoxKey } from "./payload-box.ts";
import type { TrustedBinding } from "./known-routes.ts";
import { ReplayGuard } from "./replay/replay-guard.ts";
import { ProtectedResultStore } from "./results/protected-result-store.ts";
import { SharedClaims } from "./replay/shared-claims.ts";
import { reserveMembersOf } from "../results/member-reservations.ts";
import { SignedTransport } from "./signed-transport.ts";
import { SigningBatch } from "./signing-batch.ts";
import type { SignatureError } from "./signing-errors.ts";
import { SigningConfigError } from "./signing-errors.ts";
import { keyPairOf, publicKeyOf, readPublicKeys, readSecretKey, type PublicKey } from "./signing-keys.ts";

/**
 * The `signing` option of createApp: sign every message the app publishes
 * and run only messages signed by a trusted key.
 *
 * @example
 * createApp({ signing: { key: "./keys/producer.secret", trusted: ["./keys/*.pub"] } });
 */
export interface SigningOptions {
  /** This app's secret key: a file written by `celerity keygen` (`<name>.secret`), or the 64 raw bytes. Needed to publish. */
  readonly key?: string | Uint8Array;
  /** Public keys whose messages this app's workers run: files or globs of `.pub` files (`./keys/*.pub`), or 32 raw bytes each. Needed to consume. */
  readonly trusted?: readonly (string | Uint8Array)[];
  /** Refuse a message signed longer ago than this (or, for a delayed one, this long past its eta). Default one hour. */
  readonly maxAgeMs?: number;
  /** Accept a message signed up to this far in the future (clock skew between machines). Default 30,000. */
  readonly maxSkewMs?: number;
  /**
   * Settled messages a worker process remembers to refuse replays, each until
   * it leaves the `maxAgeMs` window. Beyond this many, the oldest are forgotten
   * and messages as old are refused from then on. Default 250,000.
   */
  readonly replayCacheSize?: number;
  /**
   * Bindings made outside this app (by an admin script, another app) through
   * which its workers accept signed messages. A worker runs a signed message
   * only from a queue its signed routing reaches: the default exchange's
   * queue named by the routing key, or a queue bound to the named exchange by
   * this app's own `bindQueue` or listed here.
   */
  readonly bindings?: readonly TrustedBinding[];
  /** Most messages signed under one signature. Default 128. */
  readonly batchSize?: number;
  /**
   * Seal task arguments and result values (tweetnacl secretbox): key files
   * written by `celerity keygen --encryption`, or 32 raw bytes each. The
   * first seals, all open (for rotation). Every app of the deployment needs them.
   */
  readonly encryption?: readonly (string | Uint8Array)[];
  /** The ed25519 implementation. Default: node:crypto's where it works, else tweetnacl's. */
  readonly backend?: Ed25519;
}

export interface Signed {
  readonly broker: SignedTransport;
  readonly results: ResultStore;
  /** With encryption: what a keyed rate limit's key is sent as, a keyed hash of task and key. */
  readonly rateLimitKeyDigest?: (task: string, key: string) => string;
}

const trustedKeys = (trusted: readonly (string | Uint8Array)[]): PublicKey[] => {
  const keys: PublicKey[] = [];
  for (const entry of trusted) {
    if (typeof entry === "string") keys.push(...readPublicKeys([entry]));
    else keys.push(publicKeyOf(entry));
  }
  return keys;
};

const positive = (name: string, value: number | undefined): void => {
  if (value !== undefined && !(Number.isFinite(value) && value > 0))
    throw new SigningConfigError({ reason: `${name} must be a positive number, got ${value}` });
};

/**
 * Read and check the signing options (every key file is read now, so a bad
 * one fails createApp before it connects anywhere, not the first publish),
 * and return what wraps the app's broker and result store for signed mode.
 */
export const prepareSigning = (
  options: SigningOptions,
): ((
  connected: { readonly broker: Transport; readonly results: ResultStore },
  log: (message: string) => void,
  /** What signing times are stamped and checked by (the app's clock). Default the system clock. */
  clock?: Clock,
) => Signed) => {
  if (options.key === undefined && (options.trusted === undefined || options.trusted.length === 0)) {
    throw new SigningConfigError({
      reason: "signing needs a key to sign with (signing.key), trusted keys to verify with (signing.trusted), or both",
    });
  }
  positive("signing.maxAgeMs", options.maxAgeMs);
  positive("signing.maxSkewMs", options.maxSkewMs);
  positive("signing.replayCacheSize", options.replayCacheSize);
  positive("signing.batchSize", options.batchSize);
  const backend = options.backend ?? defaultEd25519();
  const key =
    options.key === undefined
      ? undefined
      : typeof options.key === "string"
        ? readSecretKey(options.key)
        : keyPairOf(options.key);
  const trusted = options.trusted === undefined ? [] : trustedKeys(options.trusted);
  const box =
    options.encryption === undefined || options.encryption.length === 0
      ? undefined
      : new PayloadBox(options.encryption.map((entry) => (typeof entry === "string" ? readBoxKey(entry) : entry)));
  return (connected, log, clock = systemClock) => {
    const now = nowOf(clock);
    const signer = key === undefined ? undefined : new BatchSigner(key, backend, now);
    const verifier =
      trusted.length === 0
        ? undefined
        : new MessageVerifier(trusted, backend, { maxAgeMs: options.maxAgeMs, maxSkewMs: options.maxSkewMs, now });
    const batch = signer === undefined ? undefined : new SigningBatch(signer, options.batchSize);
    const parts = {
      ...(signer !== undefined ? { signer } : {}),
      ...(batch !== undefined ? { batch } : {}),
      ...(verifier !== undefined ? { verifier } : {}),
      ...(box !== undefined ? { box } : {}),
    };
    const inProcess = connected.results instanceof MemoryResultStore || connected.results instanceof DurableResultStore;
    const results = new ProtectedResultStore(connected.results, { ...parts, inProcess });
    const broker = new SignedTransport(connected.broker, {
      ...parts,
      replay: new ReplayGuard(options.replayCacheSize),
      // A store in this process is shared by no other worker process: the replay guard covers it alone.
      ...(connected.results instanceof MemoryResultStore
        ? {}
        : { claims: new SharedClaims(reserveMembersOf(connected.results), now) }),
      ...(options.bindings !== undefined ? { bindings: options.bindings } : {}),
      log,
      refused: (envelope, error) => failRecord(results, envelope, error, log),
    });
    return box === undefined
      ? { broker, results }
      : { broker, results, rateLimitKeyDigest: box.keyedDigest("rate-limit-key") };
  };
};

/** Fail the result of a refused message if one is recorded and not final, so a waiting get() fails with the reason. */
const failRecord = (
  results: ResultStore,
  envelope: Envelope,
  error: () => SignatureError,
  log: (message: string) => void,
): void => {
  results
    .get(envelope.id)
    .then((record) => {
      if (record === undefined || READY_STATES.has(record.state)) return;
      return results.complete(envelope.id, record.task, { state: "FAILURE", error: toErrorInfo(error()) });
    })
    .catch((cause: unknown) =>
      log(`could not record the refusal of message ${envelope.id}: ${toErrorInfo(cause).message}`),
    );
};
