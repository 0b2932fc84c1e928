// Ed25519 key pairs and their files. A key file holds the raw key in
// tweetnacl's format (64-byte secret key = seed || public key; 32-byte public
// key), base64 on one line. `<name>.secret` is written readable by its owner
// only, and refused when it is readable by anyone else, as ssh does.
//
// A key id names a public key in a message: the first 8 bytes of its SHA-256,
// in hex. It is a label for looking up the trusted key, not a secret.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import nacl from "tweetnacl";
import { PUBLIC_KEY_BYTES, SECRET_KEY_BYTES } from "./ed25519.ts";
import { SigningConfigError } from "./signing-errors.ts";

/**
 * An Ed25519 key pair (tweetnacl's format), with its key id.
 *
 * @example
 * const { secretPath, publicPath } = writeKeyPair("./keys/producer"); // keys/producer.secret, keys/producer.pub
 * const signing = readSecretKey(secretPath);
 * const trusted = readPublicKeys(["./keys/*.pub"]);
 */
export interface KeyPair {
  readonly keyId: string;
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/**
 * A trusted public key, with its key id and where it was read from.
 *
 * @example
 * const [trusted] = readPublicKeys(["./keys/producer.pub"]);
 * trusted.keyId; // 16 hex digits
 */
export interface PublicKey {
  readonly keyId: string;
  readonly publicKey: Uint8Array;
  /** Where it was read from, for messages. */
  readonly source: string;
}

/**
 * The key id of a public key: the first 8 bytes of its SHA-256, in hex.
 *
 * @example
 * keyIdOf(generateKeyPair().publicKey); // e.g. "3f2a9c0e5b7d1a48"
 */
export const keyIdOf = (publicKey: Uint8Array): string =>
  createHash("sha256").update(publicKey).digest("hex").slice(0, 16);

/**
 * A new ed25519 key pair, in memory.
 *
 * @example
 * const pair = generateKeyPair();
 * createApp({ signing: { key: pair.secretKey, trusted: [pair.publicKey] } });
 */
export const generateKeyPair = (): KeyPair => {
  const { publicKey, secretKey } = nacl.sign.keyPair();
  return { keyId: keyIdOf(publicKey), publicKey, secretKey };
};

/** A key pair from a 64-byte secret key (its public half is its last 32 bytes, checked against the seed). */
export const keyPairOf = (secretKey: Uint8Array, source = "the secret key"): KeyPair => {
  if (secretKey.length !== SECRET_KEY_BYTES) {
    throw new SigningConfigError({
      reason: `${source} is ${secretKey.length} bytes; an ed25519 secret key (tweetnacl format) is ${SECRET_KEY_BYTES}`,
    });
  }
  const derived = nacl.sign.keyPair.fromSeed(secretKey.subarray(0, 32));
  if (!Buffer.from(derived.publicKey).equals(Buffer.from(secretKey.subarray(32)))) {
    throw new SigningConfigError({ reason: `${source} is corrupt: its public half does not match its seed` });
  }
  return { keyId: keyIdOf(derived.publicKey), publicKey: derived.publicKey, secretKey: derived.secretKey };
};

export const publicKeyOf = (publicKey: Uint8Array, source = "a trusted key"): PublicKey => {
  if (publicKey.length !== PUBLIC_KEY_BYTES) {
    throw new SigningConfigError({
      reason: `${source} is ${publicKey.length} bytes; an ed25519 public key is ${PUBLIC_KEY_BYTES}`,
    });
  }
  return { keyId: keyIdOf(publicKey), publicKey: Uint8Array.from(publicKey), source };
};

/**
 * Write `<out>.secret` (mode 0600) and `<out>.pub`; refuses to overwrite either.
 *
 * @example
 * const { secretPath, publicPath } = writeKeyPair("./keys/producer"); // keys/producer.secret, keys/producer.pub
 */
export const writeKeyPair = (
  out: string,
  pair: KeyPair = generateKeyPair(),
): { secretPath: string; publicPath: string; keyId: string } => {
  const secretPath = resolve(`${out}.secret`);
  const publicPath = resolve(`${out}.pub`);
  for (const path of [secretPath, publicPath]) {
    if (existsSync(path))
      throw new SigningConfigError({ reason: `${path} already exists; remove it first or choose another --out` });
  }
  mkdirSync(dirname(secretPath), { recursive: true });
  writeFileSync(secretPath, `${Buffer.from(pair.secretKey).toString("base64")}\n`, { mode: 0o600, flag: "wx" });
  writeFileSync(publicPath, `${Buffer.from(pair.publicKey).toString("base64")}\n`, { mode: 0o644, flag: "wx" });
  return { secretPath, publicPath, keyId: pair.keyId };
};

const readKeyFile = (path: string, expected: number, what: string): Uint8Array => {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new SigningConfigError({ reason: `cannot read ${what} ${path}: ${(error as Error).message}` });
  }
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, "base64") : undefined;
  if (bytes === undefined || bytes.length !== expected) {
    throw new SigningConfigError({
      reason: `${path} is not ${what}: expected ${expected} bytes in base64 on one line (as written by celerity keygen)`,
    });
  }
  return new Uint8Array(bytes);
};

/**
 * Read a secret key file; refuses one that group or others may read.
 *
 * @example
 * const pair = readSecretKey("./keys/producer.secret");
 */
export const readSecretKey = (path: string): KeyPair => {
  const full = resolve(path);
  if (process.platform !== "win32" && existsSync(full) && (statSync(full).mode & 0o077) !== 0) {
    const mode = (statSync(full).mode & 0o777).toString(8);
    throw new SigningConfigError({
      reason: `secret key ${full} is readable by others (mode ${mode}); run chmod 600 on it`,
    });
  }
  return keyPairOf(readKeyFile(full, SECRET_KEY_BYTES, "an ed25519 secret key"), full);
};

/**
 * Read one public key file (`<name>.pub`).
 *
 * @example
 * const key = readPublicKey("./keys/producer.pub");
 */
export const readPublicKey = (path: string): PublicKey => {
  const full = resolve(path);
  return publicKeyOf(readKeyFile(full, PUBLIC_KEY_BYTES, "an ed25519 public key"), full);
};

/**
 * Read every public key the patterns name. A pattern may use `*` and `?` in
 * its last path segment (`./keys/*.pub`); a pattern that matches no file is
 * an error, so a typo cannot leave a worker trusting less than intended
 * without saying so.
 *
 * @example
 * const trusted = readPublicKeys(["./keys/*.pub"]);
 */
export const readPublicKeys = (patterns: readonly string[]): PublicKey[] => {
  const keys = new Map<string, PublicKey>();
  for (const pattern of patterns) {
    const files = expand(pattern);
    if (files.length === 0)
      throw new SigningConfigError({ reason: `trusted key pattern '${pattern}' matches no file` });
    for (const file of files) {
      const key = readPublicKey(file);
      keys.set(key.keyId, key);
    }
  }
  return [...keys.values()];
};

const expand = (pattern: string): string[] => {
  const dir = dirname(pattern);
  const name = basename(pattern);
  if (/[*?[]/.test(dir))
    throw new SigningConfigError({
      reason: `trusted key pattern '${pattern}': wildcards are only allowed in the file name`,
    });
  if (!/[*?]/.test(name)) return existsSync(pattern) ? [resolve(pattern)] : [];
  const matcher = new RegExp(
    `^${name
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, "[^/]*")
      .replace(/\?/g, "[^/]")}$`,
  );
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter((entry) => matcher.test(entry))
    .sort()
    .map((entry) => resolve(join(dir, entry)));
};
