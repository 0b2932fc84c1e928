import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { readBoxKey } from "../../runtime/signing/payload-box.ts";
import { readPublicKeys, readSecretKey } from "../../runtime/signing/signing-keys.ts";
import { scaled } from "../../tests/support/waits.ts";
import { runCelerity } from "../../tests/support/watched-process.ts";

const dir = mkdtempSync(join(tmpdir(), "celerity-keygen-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const celerity = (...args: string[]) => runCelerity(args, scaled(30_000));

describe("celerity keygen", () => {
  it("writes <out>.secret readable by its owner only and <out>.pub, a pair that signs and verifies", async () => {
    const out = join(dir, "keys", "producer");
    const run = await celerity("keygen", "--out", out);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(statSync(`${out}.secret`).mode & 0o777, 0o600);
    const pair = readSecretKey(`${out}.secret`);
    const [pub] = readPublicKeys([`${out}.pub`]);
    assert.equal(pub.keyId, pair.keyId);
    assert.match(run.stdout, new RegExp(`key id ${pair.keyId}`));
  });

  it("writes an encryption key with --encryption", async () => {
    const out = join(dir, "payload");
    const run = await celerity("keygen", "--out", out, "--encryption");
    assert.equal(run.code, 0, run.stderr);
    assert.equal(statSync(`${out}.key`).mode & 0o777, 0o600);
    assert.equal(readBoxKey(`${out}.key`).length, 32);
  });

  it("exits 2 with a clear message without --out, or when the key exists", async () => {
    const missing = await celerity("keygen");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /celerity keygen: missing --out <path>/);
    const out = join(dir, "twice");
    assert.equal((await celerity("keygen", "--out", out)).code, 0);
    const again = await celerity("keygen", "--out", out);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists/);
  });
});
