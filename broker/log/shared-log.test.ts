import assert from "node:assert/strict";
import { appendFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { openDurableLog } from "./durable-log.ts";
import { instrumentedDisk, powerCutDisk, segmentFiles, tempDir, text } from "./durable-log-test-support.ts";
import { markRecord, recordsByOwner, SharedLog } from "./shared-log.ts";

const decode = (records: readonly Uint8Array[]) => records.map((record) => new TextDecoder().decode(record));

/** A shared log of two owners in `dir`, each owner's live records those it appended and still holds. */
const openShared = async (dir: string, internals = {}) => {
  const said: string[] = [];
  const { log, records } = await openDurableLog(dir, {}, internals);
  const [first, second] = recordsByOwner(records, 2, (reason) => said.push(reason));
  const shared = new SharedLog(log, { compactAtBytes: 1 << 30, name: "the log", say: (line) => said.push(line) });
  const live = { first: decode(first), second: decode(second) };
  const journal = shared.share(0, () => live.first.map((r) => text.encode(r)));
  const results = shared.share(1, () => live.second.map((r) => text.encode(r)));
  return { log, shared, journal, results, live, said };
};

describe("SharedLog", () => {
  it("covers the records of both owners appended in one turn with one write and one fsync", async () => {
    const dir = await tempDir();
    const disk = instrumentedDisk();
    const writes: number[] = [];
    const counting = {
      openSegment: async (path: string) => {
        const file = await disk.openSegment(path);
        return { ...file, write: (data: Uint8Array, at: number) => (writes.push(at), file.write(data, at)) };
      },
    };
    const { log, journal, results } = await openShared(dir, counting);
    const syncsBefore = disk.stats.datasyncs;
    const writesBefore = writes.length;
    await Promise.all([
      journal.append(text.encode("enqueue 1")),
      results.appendDeferred(() => [text.encode("pending 1")]),
      journal.append(text.encode("enqueue 2")),
    ]);
    assert.equal(disk.stats.datasyncs - syncsBefore, 1);
    assert.equal(writes.length - writesBefore, 1);
    await log.close();
  });

  it("takes a deferred owner's records when the batch is cut, not when they are asked for", async () => {
    const dir = await tempDir();
    const { log, journal, results } = await openShared(dir);
    let state = "PENDING";
    const first = journal.append(text.encode("enqueue 1"));
    // Gathered while the first batch is in flight; what it produces is the state when its batch is cut.
    await Promise.resolve();
    const second = results.appendDeferred(() => [text.encode(`task ${state}`)]);
    state = "SUCCESS";
    await Promise.all([first, second]);
    await log.close();
    const reopened = await openShared(dir);
    assert.deepEqual(reopened.live.second, ["task SUCCESS"]);
    await reopened.log.close();
  });

  it("gives each owner back its own records in append order, the first owner's unmarked as before sharing", async () => {
    const dir = await tempDir();
    const { log, journal, results } = await openShared(dir);
    await journal.append(text.encode("j1"));
    await results.append(text.encode("r1"));
    await Promise.all([journal.append(text.encode("j2")), results.appendDeferred(() => [text.encode("r2")])]);
    await log.close();
    const reopened = await openShared(dir);
    assert.deepEqual(reopened.live, { first: ["j1", "j2"], second: ["r1", "r2"] });
    await reopened.log.close();
    // A log written before it was shared is the first owner's alone.
    assert.deepEqual(decode(recordsByOwner([text.encode("old 1"), text.encode("old 2")], 2, assert.fail)[0]), [
      "old 1",
      "old 2",
    ]);
  });

  it("reports a record marked for an owner it does not have, and leaves it out", () => {
    const reasons: string[] = [];
    const split = recordsByOwner([markRecord(7, text.encode("x")), text.encode("j")], 2, (r) => reasons.push(r));
    assert.deepEqual(split.map(decode), [["j"], []]);
    assert.match(reasons.join("\n"), /record 0 belongs to owner 7, which this log does not have/);
  });

  it("compacts to every owner's live records", async () => {
    const dir = await tempDir();
    const opened = await openShared(dir);
    for (let i = 0; i < 50; i++) {
      await opened.journal.append(text.encode(`j${i}`));
      await opened.results.append(text.encode(`r${i}`));
    }
    opened.live.first = ["j49"];
    opened.live.second = ["r48", "r49"];
    await opened.shared.compact();
    assert.match(opened.said.join("\n"), /compacted the log from \d+ to \d+ bytes/);
    await opened.journal.append(text.encode("j50"));
    await opened.log.close();
    const reopened = await openShared(dir);
    assert.deepEqual(reopened.live, { first: ["j49", "j50"], second: ["r48", "r49"] });
    await reopened.log.close();
  });

  it("after a power cut keeps both owners' records up to the last fsync and neither owner's after it", async () => {
    const dir = await tempDir();
    const disk = powerCutDisk();
    const { log, journal, results } = await openShared(dir, { openSegment: disk.openSegment });
    await Promise.all([journal.append(text.encode("j1")), results.appendDeferred(() => [text.encode("r1")])]);
    disk.cut();
    // Written after the cut: never on the disk, for either owner.
    await Promise.all([journal.append(text.encode("j2")), results.appendDeferred(() => [text.encode("r2")])]);
    await log.close();
    const reopened = await openShared(dir);
    assert.deepEqual(reopened.live, { first: ["j1"], second: ["r1"] });
    await reopened.log.close();
  });

  it("cuts a torn tail, keeping every intact record of both owners before it", async () => {
    const dir = await tempDir();
    const { log, journal, results } = await openShared(dir);
    await Promise.all([journal.append(text.encode("j1")), results.appendDeferred(() => [text.encode("r1")])]);
    await log.close();
    const [segment] = await segmentFiles(dir);
    // Half a frame: the header of a record whose payload never reached the disk.
    await appendFile(join(dir, segment), new Uint8Array([0xce, 1, 0, 0, 40, 0, 0, 0, 1, 2]));
    const reopened = await openShared(dir);
    assert.deepEqual(reopened.live, { first: ["j1"], second: ["r1"] });
    await reopened.log.close();
  });
});
