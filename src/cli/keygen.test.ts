import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { readBoxKey } from "../../runtime/signing/payload-box.ts";
import { readPublicKeys, readSecretKey } from "../../runtime/signing/signing-keys.ts";

const dir = mkdtempSync(join(tmpdir(), "celerity-keygen-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = fileURLToPath(new URL("../cli.js", import.meta.url));
const celerity = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });

describe("celerity keygen", () => {
  it("writes <out>.secret readable by its owner only and <out>.pub, a pair that signs and verifies", () => {
    const out = join(dir, "keys", "producer");
    const run = celerity("keygen", "--out", out);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(statSync(`${out}.secret`).mode & 0o777, 0o600);
    const pair = readSecretKey(`${out}.secret`);
    const [pub] = readPublicKeys([`${out}.pub`]);
    assert.equal(pub.keyId, pair.keyId);
    assert.match(run.stdout, new RegExp(`key id ${pair.keyId}`));
  });

  it("writes an encryption key with --encryption", () => {
    const out = join(dir, "payload");
    const run = celerity("keygen", "--out", out, "--encryption");
    assert.equal(run.status, 0, run.stderr);
    assert.equal(statSync(`${out}.key`).mode & 0o777, 0o600);
    assert.equal(readBoxKey(`${out}.key`).length, 32);
  });

  it("exits 2 with a clear message without --out, or when the key exists", () => {
    const missing = celerity("keygen");
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /celerity keygen: missing --out <path>/);
    const out = join(dir, "twice");
    assert.equal(celerity("keygen", "--out", out).status, 0);
    const again = celerity("keygen", "--out", out);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /already exists/);
  });
});
