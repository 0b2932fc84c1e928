import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
// @ts-expect-error: a plain .mjs script without declarations.
import { runnerArgs } from "../scripts/test-runner-args.mjs";
import { scaled, within } from "./support/waits.ts";

const NEVER_SETTLES = fileURLToPath(new URL("./fixtures/never-settles.ts", import.meta.url));
const SUITES_AROUND_AN_AWAIT = fileURLToPath(new URL("./fixtures/suites-around-an-await.ts", import.meta.url));

/** Run `file` under the suite's runner settings; its output once the run ends, or a failure naming what it printed. */
const runFile = (file: string, limitMs: number): Promise<string> => {
  const child = spawn(process.execPath, (runnerArgs as (files: string[]) => string[])([file]), {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env: withoutRunnerContext(process.env),
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<string>((resolve) => child.on("close", () => resolve(output)));
  return within(exited, limitMs, `the run of ${file} to end`, () => output).finally(() => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  });
};

describe("the test runner", () => {
  it("runs every suite of a file that awaits between them, though a test outlasts the wait for open handles", {
    timeout: 60_000,
  }, async () => {
    const output = await runFile(SUITES_AROUND_AN_AWAIT, scaled(45_000));
    assert.match(output, /ok \d+ - passes after longer than the idle wait/, output);
    assert.match(output, /# tests 2\n/, output);
    assert.match(output, /# pass 2\n/, output);
  });

  it("fails a test that never settles by its name within the timeout, instead of hanging the run", async () => {
    const child = spawn(
      process.execPath,
      (runnerArgs as (files: string[], options: { timeoutMs: number }) => string[])([NEVER_SETTLES], {
        timeoutMs: 500,
      }),
      {
        stdio: ["ignore", "pipe", "pipe"],
        // A process group of its own, so the file's process (which stays alive by design) goes with it.
        detached: true,
        // Without the parent runner's context, or the child would take itself for a nested run.
        env: { ...withoutRunnerContext(process.env), CELERITY_TEST_TIMEOUT_MS: "500" },
      },
    );
    let output = "";
    const named = /not ok \d+ - waits for a promise nobody resolves[\s\S]*?test timed out after 500ms/;
    const failedByName = new Promise<void>((resolve) => {
      const read = (chunk: Buffer) => {
        output += chunk.toString();
        if (named.test(output)) resolve();
      };
      child.stdout.on("data", read);
      child.stderr.on("data", read);
    });
    try {
      // The file itself stays alive (its interval), so the run would end only at the per-file backstop: the named failure is the proof.
      await within(failedByName, 20_000, "the runner to fail the test by its name", () => output);
    } finally {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
  });
});

const withoutRunnerContext = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
  const { NODE_TEST_CONTEXT: _context, ...rest } = env;
  return rest;
};
