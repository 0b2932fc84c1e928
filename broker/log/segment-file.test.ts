import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { tempDir as newTempDir } from "./durable-log-test-support.ts";
import { openSegmentFile, SyncPlacement } from "./segment-file.ts";

/** Whether a turn of the event loop passed while `run` was awaited. */
const loopTurnedDuring = async (run: () => Promise<void>): Promise<boolean> => {
  let turned = false;
  const immediate = setImmediate(() => {
    turned = true;
  });
  await run();
  clearImmediate(immediate);
  return turned;
};

describe("openSegmentFile", () => {
  const dirs: string[] = [];
  const tempDir = async () => {
    const dir = await newTempDir();
    dirs.push(dir);
    return dir;
  };
  after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  it("writes small and large batches where they are asked, and syncs them", async () => {
    const path = join(await tempDir(), "segment.log");
    const file = await openSegmentFile(path);
    const small = new Uint8Array(200).fill(1);
    const large = new Uint8Array(200_000).fill(2);
    await file.write(small, 0);
    await file.datasync();
    await file.write(large, small.length);
    await file.datasync();
    await file.close();
    const bytes = readFileSync(path);
    assert.equal(bytes.length, small.length + large.length);
    assert.deepEqual(bytes.subarray(0, small.length), Buffer.from(small));
    assert.deepEqual(bytes.subarray(small.length), Buffer.from(large));
  });

  it("syncs a small batch without waiting for the thread pool, and a large one off the event loop", async () => {
    const file = await openSegmentFile(join(await tempDir(), "segment.log"));
    await file.write(new Uint8Array(200), 0);
    assert.equal(await loopTurnedDuring(() => file.datasync()), false);
    await file.write(new Uint8Array(100_000), 200);
    assert.equal(await loopTurnedDuring(() => file.datasync()), true);
    await file.close();
  });

  it("rejects a sync that fails, small batch or large", async () => {
    const small = await openSegmentFile(join(await tempDir(), "small.log"));
    await small.write(new Uint8Array(10), 0);
    await small.close();
    await assert.rejects(small.datasync(), { code: "EBADF" });

    const large = await openSegmentFile(join(await tempDir(), "large.log"));
    await large.write(new Uint8Array(100_000), 0);
    await large.close();
    await assert.rejects(large.datasync(), { code: "EBADF" });
  });
});

describe("SyncPlacement", () => {
  it("syncs small batches inline while inline syncs are quick, and large ones in the pool", () => {
    const placement = new SyncPlacement();
    assert.equal(placement.inline(200), true);
    placement.timedInline(150_000);
    assert.equal(placement.inline(512), true, "a lone send's record or two");
    assert.equal(placement.inline(513), false);
  });

  it("moves small batches to the pool once inline syncs are slow, and measures inline again now and then", () => {
    const placement = new SyncPlacement();
    for (let i = 0; i < 20; i++) placement.timedInline(3_000_000);
    const placed = Array.from({ length: 64 }, () => placement.inline(200));
    assert.deepEqual(
      placed.flatMap((inline, i) => (inline ? [i] : [])),
      [31, 63],
      "one small batch in 32 is synced inline to measure the disk again",
    );
    // The disk is quick again: the probes' times bring the average back under the bound.
    let probes = 0;
    let inARow = 0;
    for (let i = 0; i < 10_000 && inARow < 5; i++) {
      if (!placement.inline(200)) {
        inARow = 0;
        continue;
      }
      inARow++;
      probes++;
      placement.timedInline(100_000);
    }
    assert.equal(inARow, 5, "small batches never came back inline");
    assert.ok(probes > 0 && probes < 20, `${probes} probes`);
  });
});
