import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../cli.js", import.meta.url));
const celerity = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], {
    encoding: "utf8",
    env: { ...process.env, CELERITY_BROKER_URL: "", CELERITY_MONITOR_TOKEN: "" },
    timeout: 60_000,
  });

describe("celerity monitor: bad input", () => {
  it("refuses to listen beyond loopback without credentials, before connecting", () => {
    const run = celerity("monitor", "--broker", "celerity://127.0.0.1:1", "--host", "0.0.0.0");
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /celerity monitor: refusing to serve on 0\.0\.0\.0 without credentials/);
  });

  it("names a bad port, a bad bound and an unreadable or malformed credentials file", (t) => {
    const dir = mkdtempSync(join(tmpdir(), "celerity-monitor-cli-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const port = celerity("monitor", "--broker", "celerity://127.0.0.1:1", "--port", "70000");
    assert.equal(port.status, 2);
    assert.match(port.stderr, /--port must be an integer from 0 to 65535, got '70000'/);
    const bound = celerity("monitor", "--broker", "celerity://127.0.0.1:1", "--max-tasks", "0");
    assert.equal(bound.status, 2);
    assert.match(bound.stderr, /--max-tasks must be an integer of at least 1, got '0'/);
    const missing = celerity("monitor", "--broker", "celerity://127.0.0.1:1", "--auth-token-file", join(dir, "none"));
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /--auth-token-file: cannot read .*none/);
    const malformed = join(dir, "basic");
    writeFileSync(malformed, "just-a-user\n");
    const basic = celerity("monitor", "--broker", "celerity://127.0.0.1:1", "--basic-auth-file", malformed);
    assert.equal(basic.status, 2);
    assert.match(basic.stderr, /--basic-auth-file: .* must hold user:password on one line/);
    const unknown = celerity("monitor", "--colour");
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /Unknown option '--colour' \(see celerity monitor --help\)/);
  });

  it("prints its help, and is listed in celerity --help", () => {
    const help = celerity("monitor", "--help");
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^celerity monitor: a live web dashboard and HTTP API/);
    assert.match(celerity("--help").stdout, /celerity monitor --broker <url> \[options\]/);
  });
});
