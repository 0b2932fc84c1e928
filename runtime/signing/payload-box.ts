// Payload encryption with tweetnacl's secretbox (XSalsa20-Poly1305): task
// arguments and result values cross the broker sealed, so the broker (and
// anyone reading its log) never sees them in the clear. Secretbox is
// authenticated, so a sealed value also cannot be forged or altered without
// the key. Every app that sends or runs the tasks shares the key.
//
// Several keys may be held at once for rotation: the first seals, every one
// opens. A sealed payload is
//   "cbx2" | key id (8 bytes) | nonce (24 bytes) | box
// where the key id is a hash of the key (it does not reveal it).
//
// Each payload is sealed for a context: what it is and whose it is (a
// message's arguments, a task's result, a workflow graph, each with its id).
// The context is sealed in front of the plain bytes and checked on opening,
// so a sealed value pasted into another record, or a message's arguments
// pasted in as a result, does not open.
import { createHash, createHmac } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import nacl from "tweetnacl";
import { SigningConfigError } from "./signing-errors.ts";

const MAGIC = Buffer.from("cbx2", "latin1");
const ID_BYTES = 8;
const HEADER_BYTES = MAGIC.length + ID_BYTES + nacl.secretbox.nonceLength;
export const BOX_KEY_BYTES = nacl.secretbox.keyLength;

export const boxKeyIdOf = (key: Uint8Array): Buffer =>
  createHash("sha256").update("celerity/box-key-id\0").update(key).digest().subarray(0, ID_BYTES);

/** What a sealed payload is: the arguments of a message, the result of a task, or a workflow graph. */
export type SealRole = "args" | "result" | "graph";

/** The context a payload of `role` for `id` is sealed with. */
export const sealContext = (role: SealRole, id: string): Buffer => Buffer.from(`celerity/${role}\0${id}`, "utf8");

export const isSealed = (bytes: Uint8Array): boolean =>
  bytes.length >= HEADER_BYTES && MAGIC.equals(Buffer.from(bytes.buffer, bytes.byteOffset, MAGIC.length));

/**
 * Seals and opens payloads with the keys it holds: the first seals, every one opens.
 *
 * @example
 * const box = new PayloadBox([readBoxKey("./keys/payload.key")]);
 * const sealed = box.seal(bytes, sealContext("result", id));
 * box.open(sealed, sealContext("result", id)); // bytes
 */
export class PayloadBox {
  private readonly keys: Map<string, Uint8Array>;
  private readonly sealing: { readonly id: Buffer; readonly key: Uint8Array };

  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new SigningConfigError({ reason: "encryption needs at least one key" });
    for (const key of keys) {
      if (key.length !== BOX_KEY_BYTES)
        throw new SigningConfigError({
          reason: `an encryption key is ${key.length} bytes; secretbox keys are ${BOX_KEY_BYTES}`,
        });
    }
    this.keys = new Map(keys.map((key) => [boxKeyIdOf(key).toString("hex"), Uint8Array.from(key)]));
    this.sealing = { id: boxKeyIdOf(keys[0]), key: Uint8Array.from(keys[0]) };
  }

  /**
   * A keyed hash for values that must be compared elsewhere without being
   * revealed (a rate limit's key, derived from arguments, on the node): the
   * same input gives the same digest in every app holding the sealing key;
   * without the key it cannot be reversed or tested against guesses.
   */
  keyedDigest(purpose: string): (task: string, value: string) => string {
    const key = createHmac("sha256", this.sealing.key).update(`celerity/${purpose}`).digest();
    return (task, value) =>
      createHmac("sha256", key).update(task).update("\0").update(value).digest("base64url").slice(0, 32);
  }

  /** `plain`, sealed for `context` (see sealContext). */
  seal(plain: Uint8Array, context: Uint8Array): Uint8Array {
    const nonce = nacl.randomBytes(nacl.secretbox.nonceLength);
    const framed = new Uint8Array(4 + context.length + plain.length);
    new DataView(framed.buffer).setUint32(0, context.length);
    framed.set(context, 4);
    framed.set(plain, 4 + context.length);
    const box = nacl.secretbox(framed, nonce, this.sealing.key);
    const out = new Uint8Array(HEADER_BYTES + box.length);
    out.set(MAGIC, 0);
    out.set(this.sealing.id, MAGIC.length);
    out.set(nonce, MAGIC.length + ID_BYTES);
    out.set(box, HEADER_BYTES);
    return out;
  }

  /** The plain bytes, or a reason they cannot be had (among them: sealed for another context). */
  open(sealed: Uint8Array, context: Uint8Array): Uint8Array | { readonly reason: string } {
    if (!isSealed(sealed)) return { reason: "the payload is not encrypted, and this app requires encryption" };
    const id = Buffer.from(sealed.subarray(MAGIC.length, MAGIC.length + ID_BYTES)).toString("hex");
    const key = this.keys.get(id);
    if (key === undefined) return { reason: `the payload is encrypted with key ${id}, which this app does not hold` };
    const plain = nacl.secretbox.open(
      sealed.subarray(HEADER_BYTES),
      sealed.subarray(MAGIC.length + ID_BYTES, HEADER_BYTES),
      key,
    );
    if (plain === null)
      return { reason: "the encrypted payload does not open (altered, or sealed with another key of the same id)" };
    const length = plain.length >= 4 ? new DataView(plain.buffer, plain.byteOffset, 4).getUint32(0) : -1;
    if (length !== context.length || !Buffer.from(plain.buffer, plain.byteOffset + 4, length).equals(context)) {
      const found =
        length < 0 || 4 + length > plain.length
          ? "(none)"
          : Buffer.from(plain.subarray(4, 4 + length)).toString("utf8");
      return {
        reason: `the encrypted payload was sealed as ${JSON.stringify(found)}, not as ${JSON.stringify(Buffer.from(context).toString("utf8"))}: moved from another record or message`,
      };
    }
    return plain.subarray(4 + length);
  }
}

/**
 * A new 32-byte key for encrypting task arguments and results (tweetnacl secretbox).
 *
 * @example
 * createApp({ signing: { key: "./keys/app.secret", trusted: ["./keys/*.pub"], encryption: [generateBoxKey()] } });
 */
export const generateBoxKey = (): Uint8Array => nacl.randomBytes(BOX_KEY_BYTES);

/**
 * Read a 32-byte secretbox key (base64 on one line); refuses a file others can read.
 *
 * @example
 * const key = readBoxKey("./keys/payload.key");
 */
export const readBoxKey = (path: string): Uint8Array => {
  const full = resolve(path);
  if (!existsSync(full))
    throw new SigningConfigError({ reason: `cannot read the encryption key ${full}: no such file` });
  if (process.platform !== "win32" && (statSync(full).mode & 0o077) !== 0) {
    throw new SigningConfigError({
      reason: `encryption key ${full} is readable by others (mode ${(statSync(full).mode & 0o777).toString(8)}); run chmod 600 on it`,
    });
  }
  const text = readFileSync(full, "utf8").trim();
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, "base64") : undefined;
  if (bytes === undefined || bytes.length !== BOX_KEY_BYTES) {
    throw new SigningConfigError({
      reason: `${full} is not an encryption key: expected ${BOX_KEY_BYTES} bytes in base64 on one line (celerity keygen --encryption)`,
    });
  }
  return new Uint8Array(bytes);
};
