import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { scaled } from "../../tests/support/waits.ts";
import { DurableLog } from "./durable-log.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const writer = fileURLToPath(new URL("./test-fixtures/durable-log-writer.ts", import.meta.url));
const text = new TextEncoder();
/** Must match `recordFor` in test-fixtures/durable-log-writer.ts. */
const recordFor = (i: number): Uint8Array => text.encode(`crash record ${i} ${"y".repeat((i * 53) % 120)}`);

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

interface Run {
  readonly opened: number;
  readonly confirmed: number[];
  readonly signal: NodeJS.Signals | null;
}

/**
 * Run the writer on `dir` until it has confirmed `target` appends, then SIGKILL
 * it; resolves once its output is fully read. Fails loudly if the writer dies on
 * its own, does not open the log within `startMs` (loading TypeScript through
 * tsx takes seconds on a loaded machine), or stalls: prints nothing for
 * `stallMs` after that. Limits on progress, not on the whole run: on a loaded
 * machine 1,500 fsyncs may take long, and a writer that still confirms is not
 * stuck.
 */
const appendUntilKilled = (
  dir: string,
  mode: "always" | "interval",
  target: number,
  stallMs = scaled(15_000),
  startMs = scaled(60_000),
): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", writer, dir, mode], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let opened = -1;
    const confirmed: number[] = [];
    let pending = "";
    let stderr = "";
    let killed = false;
    const stalled = (ms: number) => () => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `writer ${opened < 0 ? "did not open the log" : `confirmed ${confirmed.length} of ${target} appends, then nothing`} for ${ms} ms; stderr: ${stderr}`,
        ),
      );
    };
    let timer = setTimeout(stalled(startMs), startMs);
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      clearTimeout(timer);
      if (!killed) timer = setTimeout(stalled(stallMs), stallMs);
      const lines = (pending + chunk).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        if (line.startsWith("opened ")) opened = Number(line.slice(7));
        else confirmed.push(Number(line));
      }
      if (!killed && confirmed.length >= target) {
        killed = true;
        clearTimeout(timer);
        child.kill("SIGKILL");
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (!killed) reject(new Error(`writer exited by itself (code ${code}, signal ${signal}); stderr: ${stderr}`));
      else resolve({ opened, confirmed, signal });
    });
  });

/** Open the log and check it holds records 0, 1, 2, ... in order, including every confirmed one. */
const assertRecovered = async (dir: string, run: Run): Promise<number> => {
  const { log, records } = await DurableLog.open(dir, { segmentBytes: 64 * 1024 });
  await log.close();
  assert.equal(run.signal, "SIGKILL");
  assert.ok(run.opened >= 0, "the writer never reported opening the log");
  const highest = Math.max(...run.confirmed);
  assert.ok(
    run.confirmed.every((i) => i >= run.opened),
    "the writer confirmed a record from before it opened",
  );
  assert.ok(
    records.length > highest,
    `record ${highest} was confirmed but only ${records.length} records were recovered`,
  );
  for (let i = 0; i < records.length; i++) {
    if (!Buffer.from(records[i]).equals(recordFor(i)))
      assert.fail(`recovered record ${i} is not the record appended ${i}th`);
  }
  return records.length;
};

describe("DurableLog after the process is killed", () => {
  // Three writers, each started through tsx and making 1,500 fsyncs: minutes on a loaded machine.
  it('recovers every confirmed append, in order, under fsync "always", over repeated kills', {
    timeout: 240_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "celerity-crash-"));
    dirs.push(dir);
    let recovered = 0;
    for (let round = 0; round < 3; round++) {
      const run = await appendUntilKilled(dir, "always", 1_500);
      assert.equal(run.opened, recovered, "the writer did not see the records recovered after the last kill");
      recovered = await assertRecovered(dir, run);
    }
  });

  it("recovers every confirmed append, in order, under { intervalMs } (the OS has the writes)", {
    timeout: 120_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "celerity-crash-"));
    dirs.push(dir);
    const run = await appendUntilKilled(dir, "interval", 5_000);
    await assertRecovered(dir, run);
  });
});
