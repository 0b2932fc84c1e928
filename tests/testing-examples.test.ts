/**
 * The testing toolkit's own examples (examples/testing/) under the three
 * runners docs/testing.md shows: node:test, vitest and jest, each in a
 * child process from the repository, importing `celerity/testing` by the
 * package's name. Each child is bounded by a timeout and killed at the end.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { scaled } from "./support/waits.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RUN_TIMEOUT_MS = scaled(90_000);
const require = createRequire(import.meta.url);

interface Run {
  readonly code: number | null;
  readonly output: string;
}

/** Run `node args` in the repository; resolves with its exit code and output, or fails after RUN_TIMEOUT_MS. */
const runNode = (args: readonly string[], env: Record<string, string> = {}): Promise<Run> =>
  new Promise((resolve, reject) => {
    // Without the parent runner's NODE_TEST_CONTEXT, which would make a child node:test skip its files.
    const { NODE_TEST_CONTEXT: _parent, ...inherited } = process.env;
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...inherited, ...env, FORCE_COLOR: "0", NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`node ${args.join(" ")} did not finish within ${RUN_TIMEOUT_MS} ms; output:\n${output}`));
    }, RUN_TIMEOUT_MS);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });

const binOf = (pkg: string, bin: string): string => {
  const manifest = require.resolve(`${pkg}/package.json`);
  const bins = (require(manifest) as { bin: string | Record<string, string> }).bin;
  return fileURLToPath(new URL(typeof bins === "string" ? bins : bins[bin], `file://${manifest}`));
};

describe("the testing toolkit's examples", () => {
  it("pass under node:test", async () => {
    const { code, output } = await runNode([
      "--import",
      "tsx",
      "--test",
      "--test-reporter=spec",
      "examples/testing/node-test.test.ts",
    ]);
    assert.equal(code, 0, output);
    assert.match(output, /ℹ pass 3\b/, output);
    assert.match(output, /ℹ fail 0\b/, output);
  });

  it("pass under vitest 3", async () => {
    const { code, output } = await runNode([binOf("vitest", "vitest"), "run", "examples/testing/vitest.test.ts"]);
    assert.equal(code, 0, output);
    assert.match(output, /Tests\s+2 passed \(2\)/, output);
  });

  it("pass under jest", async () => {
    const { code, output } = await runNode([binOf("jest", "jest"), "-c", "examples/testing/jest.config.mjs"], {
      NODE_OPTIONS: "--experimental-vm-modules",
    });
    assert.equal(code, 0, output);
    assert.match(output, /Tests:\s+2 passed, 2 total/, output);
  });
});
