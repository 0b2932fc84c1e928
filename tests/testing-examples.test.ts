/**
 * The testing toolkit's own examples (examples/testing/) under the three
 * runners docs/testing.md shows: node:test, vitest and jest, each in a
 * child process from the repository, importing `celerity/testing` by the
 * package's name. Each child is bounded by a timeout and killed at the end.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { scaled } from "./support/waits.ts";
import { nodeProcess } from "./support/watched-process.ts";

const RUN_TIMEOUT_MS = scaled(90_000);
const require = createRequire(import.meta.url);

/** Run `node args` in the repository to its end: its exit code and output, or a failure after RUN_TIMEOUT_MS. */
const runNode = async (args: readonly string[], env: Record<string, string> = {}) => {
  // Without the parent runner's NODE_TEST_CONTEXT, which would make a child node:test skip its files.
  const child = nodeProcess(`node ${args.at(-1)}`, args, {
    env: { ...env, FORCE_COLOR: "0", NO_COLOR: "1" },
    withoutEnv: ["NODE_TEST_CONTEXT"],
  });
  try {
    const { code } = await child.exit(RUN_TIMEOUT_MS);
    return { code, output: child.output };
  } finally {
    await child.kill();
  }
};

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
