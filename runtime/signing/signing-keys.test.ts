import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import nacl from "tweetnacl";
import { generateKeyPair, keyIdOf, keyPairOf, readPublicKeys, readSecretKey, writeKeyPair } from "./signing-keys.ts";
import { SigningConfigError } from "./signing-errors.ts";

const dir = mkdtempSync(join(tmpdir(), "celerity-keys-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("signing keys", () => {
  it("writes a key pair in tweetnacl's format, the secret readable by its owner only, and reads it back", () => {
    const { secretPath, publicPath, keyId } = writeKeyPair(join(dir, "a/producer"));
    assert.equal(statSync(secretPath).mode & 0o777, 0o600);
    const pair = readSecretKey(secretPath);
    assert.equal(pair.keyId, keyId);
    assert.equal(pair.secretKey.length, 64);
    const message = new TextEncoder().encode("hello");
    const [pub] = readPublicKeys([publicPath]);
    assert.equal(pub.keyId, keyId);
    assert.equal(nacl.sign.detached.verify(message, nacl.sign.detached(message, pair.secretKey), pub.publicKey), true);
  });

  it("refuses to overwrite an existing key", () => {
    writeKeyPair(join(dir, "twice"));
    assert.throws(() => writeKeyPair(join(dir, "twice")), /already exists/);
  });

  it("refuses a secret key file that others can read", () => {
    const { secretPath } = writeKeyPair(join(dir, "loose"));
    chmodSync(secretPath, 0o644);
    assert.throws(
      () => readSecretKey(secretPath),
      (e: unknown) => e instanceof SigningConfigError && /readable by others.*chmod 600/.test(e.message),
    );
  });

  it("names the file and the expected size when a key file is not a key", () => {
    const path = join(dir, "bad.pub");
    writeFileSync(path, "not a key\n");
    assert.throws(() => readPublicKeys([path]), /bad\.pub is not an ed25519 public key: expected 32 bytes/);
    assert.throws(
      () => readSecretKey(join(dir, "missing.secret")),
      /cannot read an ed25519 secret key .*missing\.secret/,
    );
  });

  it("refuses a secret key whose public half does not match its seed", () => {
    const { secretKey } = generateKeyPair();
    const corrupt = Uint8Array.from(secretKey);
    corrupt[63] ^= 1;
    assert.throws(() => keyPairOf(corrupt), /public half does not match/);
  });

  it("expands a file-name glob, and refuses a pattern that matches nothing", () => {
    const sub = join(dir, "ring");
    const a = writeKeyPair(join(sub, "one"));
    const b = writeKeyPair(join(sub, "two"));
    const keys = readPublicKeys([join(sub, "*.pub")]);
    assert.deepEqual(keys.map((k) => k.keyId).sort(), [a.keyId, b.keyId].sort());
    assert.throws(() => readPublicKeys([join(sub, "*.pubkey")]), /matches no file/);
    assert.throws(() => readPublicKeys([join(dir, "*", "one.pub")]), /only allowed in the file name/);
  });

  it("derives a 16-hex-digit key id from the public key", () => {
    const pair = generateKeyPair();
    assert.match(keyIdOf(pair.publicKey), /^[0-9a-f]{16}$/);
    assert.equal(
      readFileSync(writeKeyPair(join(dir, "id"), pair).publicPath, "utf8").trim(),
      Buffer.from(pair.publicKey).toString("base64"),
    );
  });
});
