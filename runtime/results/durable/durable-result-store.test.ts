import assert from "node:assert/strict";
import { powerCutDisk } from "../../../broker/log/durable-log-test-support.ts";
import { decode } from "@msgpack/msgpack";
import { appendFile, mkdir, readdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DataDirLockedError } from "../../../broker/log/data-dir-lock.ts";
import { DurableLog } from "../../../broker/log/durable-log.ts";
import { openSegmentFile, type OpenSegment } from "../../../broker/log/segment-file.ts";
import { tempDir } from "../../../broker/node/node-test-support.ts";
import { scaled, within } from "../../../tests/support/waits.ts";
import { DurableResultStore, STARTED_LOG_DELAY_MS, type DurableResultStoreOptions } from "./durable-result-store.ts";
import { logEntry, ResultLogEncoder, replayResultLog } from "./result-log.ts";
import { twoStepGraph } from "../result-store-conformance.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : new TextDecoder().decode(value));

/** A store in a fresh directory, reopened on demand; every store opened is closed and the directory removed by `done`. */
const fixture = async (options: DurableResultStoreOptions = {}) => {
  const dir = tempDir();
  const path = join(dir.path, "results");
  const logs: string[] = [];
  const opened: DurableResultStore[] = [];
  const open = async (more: DurableResultStoreOptions = {}) => {
    const store = await DurableResultStore.open(path, { log: (line) => logs.push(line), ...options, ...more });
    opened.push(store);
    return store;
  };
  const done = async () => {
    for (const store of opened) await store.close().catch(() => undefined);
    dir.remove();
  };
  /** A store on a disk that keeps only what was fsynced when `disk.cut()` is called (never closed: the cut is its end). */
  const openCuttable = async () => {
    const disk = powerCutDisk();
    const store = await DurableResultStore.open(path, { log: () => {} }, { openSegment: disk.openSegment });
    return { store, disk };
  };
  return { path, logs, open, openCuttable, done };
};

/** The log records in `path`, decoded, read without replaying them into a store. */
const rawLog = async (path: string) => {
  const { log, records } = await DurableLog.open(path);
  await log.close();
  return records;
};

/** Segments on the real disk whose fsync fails with EIO while `failing` is set. */
const failingFsync = (): { failing: boolean; openSegment: OpenSegment } => {
  const disk: { failing: boolean; openSegment: OpenSegment } = {
    failing: false,
    openSegment: (async (path) => {
      const file = await openSegmentFile(path);
      return {
        write: (data, position) => file.write(data, position),
        datasync: () =>
          disk.failing ? Promise.reject(Object.assign(new Error("EIO: i/o error"), { code: "EIO" })) : file.datasync(),
        truncate: (length) => file.truncate(length),
        close: () => file.close(),
      };
    }) as OpenSegment,
  };
  return disk;
};

describe("DurableResultStore", () => {
  it("keeps task states, results, errors, workflow graphs, join counts and claims across a restart", async () => {
    const f = await fixture();
    try {
      const before = await f.open();
      await before.setState("pending", "add", "PENDING");
      await before.setState("started", "add", "STARTED", { retries: 2, workflow: "wf", node: 1 });
      assert.equal(await before.complete("done", "add", { state: "SUCCESS", value: bytes("42") }), true);
      await before.complete("failed", "add", {
        state: "FAILURE",
        error: { name: "Error", message: "boom", stack: "at x" },
      });
      await before.saveGraph(twoStepGraph("wf"));
      await before.arrive("wf:3", 0);
      await before.arrive("wf:3", 2);
      await before.arrive("wf:3", 2);
      assert.equal(await before.claim("wf:sent:1"), true);
      assert.equal(await before.claim("wf:sent:2"), true);
      await before.release("wf:sent:2");
      await before.setState("forgotten", "add", "STARTED");
      await before.forget("forgotten");
      await before.close();

      const after = await f.open();
      assert.equal((await after.get("pending"))?.state, "PENDING");
      const started = await after.get("started");
      assert.deepEqual([started?.state, started?.retries, started?.workflow, started?.node], ["STARTED", 2, "wf", 1]);
      const done = await after.get("done");
      assert.equal(done?.state, "SUCCESS");
      assert.equal(text(done?.value), "42");
      assert.deepEqual((await after.get("failed"))?.error, { name: "Error", message: "boom", stack: "at x" });
      assert.equal(await after.get("forgotten"), undefined);
      assert.deepEqual(await after.graph("wf"), twoStepGraph("wf"));
      assert.equal(await after.arrive("wf:3", 1), 3, "two members had arrived before the restart");
      assert.equal(await after.claim("wf:sent:1"), false, "a claim made before the restart still holds");
      assert.equal(await after.claim("wf:sent:2"), true, "a released claim can be claimed again");
      assert.match(f.logs.at(-1) ?? "", /recovered 4 task results, 1 workflow graphs, 1 joins and 1 claims/);
    } finally {
      await f.done();
    }
  });

  it("keeps reserved members across a restart and a compaction, each with its holder, and drops a set whose time is up", async () => {
    let now = 1_000_000;
    const f = await fixture({ now: () => now });
    try {
      const before = await f.open();
      assert.deepEqual(await before.reserveMembers("batch-a", [1, 2], "worker-1", 60_000), [true, true]);
      assert.deepEqual(await before.reserveMembers("batch-a", [2, 3], "worker-2", 60_000), [false, true]);
      assert.deepEqual(await before.reserveMembers("batch-short", [1], "worker-1", 1_000), [true]);
      await before.close();

      now += 2_000;
      const after = await f.open();
      assert.deepEqual(
        await after.reserveMembers("batch-a", [1, 2, 3, 4], "worker-3", 60_000),
        [false, false, false, true],
        "members taken before the restart are still held",
      );
      assert.deepEqual(await after.reserveMembers("batch-a", [3], "worker-2", 60_000), [true], "by their own holder");
      assert.deepEqual(await after.reserveMembers("batch-short", [1], "worker-3", 60_000), [true], "its time was up");
      await after.compact();
      await after.close();

      const compacted = await f.open();
      assert.deepEqual(await compacted.reserveMembers("batch-a", [1, 3, 4, 5], "worker-1", 60_000), [
        true,
        false,
        false,
        true,
      ]);
      assert.deepEqual(await compacted.reserveMembers("batch-short", [1], "worker-1", 60_000), [false]);
    } finally {
      await f.done();
    }
  });

  it("keeps every other result when one record in the middle of the results log is damaged", async () => {
    const f = await fixture();
    try {
      const store = await f.open();
      for (let i = 0; i < 100; i++)
        await store.complete(`task-${i}`, "add", { state: "SUCCESS", value: bytes(`value-${i}`) });
      await store.close();
      const [segment] = (await readdir(f.path)).filter((name) => name.endsWith(".log"));
      const contents = await readFile(join(f.path, segment));
      const at = contents.indexOf(Buffer.from("value-50"));
      assert.ok(at > 0);
      contents[at] ^= 0xff;
      await writeFile(join(f.path, segment), contents);
      const after = await f.open();
      const missing: string[] = [];
      for (let i = 0; i < 100; i++)
        if (text((await after.get(`task-${i}`))?.value) !== `value-${i}`) missing.push(`task-${i}`);
      assert.deepEqual(missing, ["task-50"]);
      assert.ok(
        f.logs.some((line) => /damaged record in .*quarantine/.test(line)),
        f.logs.join("\n"),
      );
    } finally {
      await f.done();
    }
  });

  it("answers a write only once it is durable: a power cut right after the answers loses nothing answered", async () => {
    const f = await fixture();
    try {
      // Writes reach the file only when fsynced: a write answered before its fsync is lost at the cut.
      const { store: crashed, disk } = await f.openCuttable();
      await crashed.complete("t1", "add", { state: "SUCCESS", value: bytes("1") });
      await crashed.saveGraph(twoStepGraph("wf"));
      disk.cut();
      // No close: the next open reads what the disk holds.
      const after = await f.open();
      assert.equal(text((await after.get("t1"))?.value), "1");
      assert.deepEqual(await after.graph("wf"), twoStepGraph("wf"));
    } finally {
      await f.done();
    }
  });

  it("lets a worker start a task before STARTED is durable, while readers and refusals still wait for the disk", async () => {
    const f = await fixture();
    let release: () => void = () => {};
    const held = { on: false };
    const openSegment = (async (path) => {
      const file = await openSegmentFile(path);
      return {
        write: (data, position) => file.write(data, position),
        datasync: () =>
          held.on ? new Promise<void>((resolve) => (release = resolve)).then(() => file.datasync()) : file.datasync(),
        truncate: (length) => file.truncate(length),
        close: () => file.close(),
      };
    }) as OpenSegment;
    try {
      const store = await DurableResultStore.open(f.path, { log: () => {} }, { openSegment });
      await store.complete("done", "add", { state: "SUCCESS", value: bytes("1") });
      held.on = true;
      assert.equal(await store.start("t1", "add"), true, "answered while the fsync of STARTED is held");
      let read: string | undefined;
      const reading = store.get("t1").then((record) => (read = record?.state));
      let refused: boolean | undefined;
      const refusing = Promise.resolve(store.start("done", "add")).then((answer) => (refused = answer));
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(read, undefined, "a reader must not see STARTED before it is durable");
      assert.equal(refused, undefined, "a refusal waits for the disk as every other answer");
      held.on = false;
      release();
      await Promise.all([reading, refusing]);
      assert.equal(read, "STARTED");
      assert.equal(refused, false, "a task with a final state does not start again");
    } finally {
      await f.done();
    }
  });

  it("logs STARTED only for a task still running after a while: one that finishes first costs its final record alone", async () => {
    const f = await fixture();
    try {
      const { store, disk } = await f.openCuttable();
      assert.equal(await store.start("quick", "add"), true);
      assert.equal(await store.start("slow", "add"), true);
      // Another write made durable: a STARTED logged as soon as it was made would be on disk now.
      await store.setState("other", "add", "PENDING", { newId: true });
      await store.complete("quick", "add", { state: "SUCCESS", value: bytes("1") });
      await new Promise((resolve) => setTimeout(resolve, 3 * STARTED_LOG_DELAY_MS));
      await store.setState("later", "add", "PENDING", { newId: true });
      disk.cut();
      // No close (it would log what is held back): the disk holds what the store logged by itself.
      const records = await rawLog(f.path);
      const logged = records.flatMap((record) =>
        (decode(record) as unknown[][]).map((entry) => `${entry[1]} ${entry[3]}`),
      );
      assert.deepEqual(logged, ["other PENDING", "quick SUCCESS", "slow STARTED", "later PENDING"]);
      const after = await f.open();
      assert.equal(
        (await after.get("slow"))?.state,
        "STARTED",
        "a task still running has its STARTED logged after the delay",
      );
    } finally {
      await f.done();
    }
  });

  it("makes STARTED durable before refusing a revocation because the task started: a crash cannot take back the refusal", async () => {
    const f = await fixture();
    try {
      const { store, disk } = await f.openCuttable();
      assert.equal(await store.start("t", "add"), true);
      const revoked = await store.complete("t", "add", {
        state: "REVOKED",
        error: { name: "TaskRevokedError", message: "revoked" },
        unlessStarted: true,
      });
      assert.equal(revoked, false, "the task had started");
      disk.cut();
      const after = await f.open();
      assert.equal((await after.get("t"))?.state, "STARTED");
    } finally {
      await f.done();
    }
  });

  it("logs a task's held-back STARTED when the store closes", async () => {
    const f = await fixture();
    try {
      const store = await f.open();
      assert.equal(await store.start("t", "add"), true);
      await store.close();
      assert.equal((await (await f.open()).get("t"))?.state, "STARTED");
    } finally {
      await f.done();
    }
  });

  it("keeps the first final state across restarts: later states and outcomes do not replace it", async () => {
    const f = await fixture();
    try {
      const first = await f.open();
      await first.setState("t", "add", "STARTED");
      await first.complete("t", "add", { state: "SUCCESS", value: bytes("first") });
      // A redelivered copy of the task reports again.
      await first.setState("t", "add", "STARTED");
      assert.equal(
        await first.complete("t", "add", { state: "FAILURE", error: { name: "Error", message: "late" } }),
        false,
      );
      await first.close();

      const second = await f.open();
      const record = await second.get("t");
      assert.equal(record?.state, "SUCCESS");
      assert.equal(text(record?.value), "first");
      assert.equal(await second.complete("t", "add", { state: "SUCCESS", value: bytes("again") }), false);
      await second.close();
      assert.equal(text((await (await f.open()).get("t"))?.value), "first");
    } finally {
      await f.done();
    }
  });

  it("wakes a waiter with the result of a task finished by another caller", async () => {
    const f = await fixture();
    try {
      const store = await f.open();
      const waiting = store.waitFinal("t", 5_000, () => new Error("never woken"));
      await store.complete("t", "add", { state: "SUCCESS", value: bytes("v") });
      assert.equal(text((await waiting).value), "v");
    } finally {
      await f.done();
    }
  });

  it("brings back no record the store had expired or evicted, and a record written again after its eviction as last written", async () => {
    let now = 1_000_000;
    const f = await fixture({ maxResults: 4, ttlMs: 10_000, now: () => now });
    try {
      const store = await f.open();
      await store.complete("expires", "add", { state: "SUCCESS", value: bytes("old") });
      now += 9_000;
      await store.complete("evicted", "add", { state: "SUCCESS", value: bytes("gone") });
      for (const id of ["a", "b", "c", "d", "e"]) await store.setState(id, "add", "STARTED");
      assert.equal(await store.get("evicted"), undefined, "evicted by the bound");
      // A redelivered copy of the evicted task starts again: the store now holds it as STARTED, not SUCCESS.
      await store.setState("evicted", "add", "STARTED");
      now += 2_000;
      assert.equal(await store.get("expires"), undefined, "expired");
      const live = new Map<string, string | undefined>();
      for (const id of ["expires", "evicted", "a", "b", "c", "d", "e"]) live.set(id, (await store.get(id))?.state);
      await store.close();

      const after = await f.open();
      for (const [id, state] of live) assert.equal((await after.get(id))?.state, state, `task ${id} after the restart`);
      assert.equal((await after.get("evicted"))?.state, "STARTED");
    } finally {
      await f.done();
    }
  });

  it("lets workflow bookkeeping expire on time across a restart", async () => {
    let now = 1_000_000;
    const f = await fixture({ ttlMs: 10_000, now: () => now });
    try {
      const store = await f.open();
      await store.saveGraph(twoStepGraph("old"));
      await store.claim("old:sent:1");
      await store.arrive("old:1", 0);
      now += 6_000;
      await store.saveGraph(twoStepGraph("young"));
      await store.close();
      now += 6_000;
      const after = await f.open();
      assert.equal(await after.graph("old"), undefined);
      assert.equal(await after.claim("old:sent:1"), true);
      assert.equal(await after.arrive("old:1", 1), 1);
      assert.deepEqual(await after.graph("young"), twoStepGraph("young"));
    } finally {
      await f.done();
    }
  });

  it("reports a torn record at the end of the log and keeps every intact record before it", async () => {
    const f = await fixture();
    try {
      const store = await f.open();
      await store.complete("kept-1", "add", { state: "SUCCESS", value: bytes("1") });
      await store.complete("kept-2", "add", { state: "SUCCESS", value: bytes("2") });
      await store.complete("torn", "add", { state: "SUCCESS", value: bytes("3") });
      await store.close();
      const segments = (await readdir(f.path)).filter((name) => name.endsWith(".log")).sort();
      const last = join(f.path, segments.at(-1) as string);
      await truncate(last, (await stat(last)).size - 3);

      const after = await f.open();
      assert.equal(text((await after.get("kept-1"))?.value), "1");
      assert.equal(text((await after.get("kept-2"))?.value), "2");
      assert.equal(await after.get("torn"), undefined);
      assert.ok(
        f.logs.some((line) =>
          /torn tail in .*\.log at offset \d+ \(.+\): \d+ bytes of an unfinished write cut off/.test(line),
        ),
        f.logs.join("\n"),
      );
      assert.match(f.logs.at(-1) ?? "", /recovered 2 task results, .* \(1 corrupted records reported\)/);
    } finally {
      await f.done();
    }
  });

  it("reports garbage appended to the log and keeps every record before it", async () => {
    const f = await fixture();
    try {
      const store = await f.open();
      await store.complete("kept", "add", { state: "SUCCESS", value: bytes("1") });
      await store.close();
      const segments = (await readdir(f.path)).filter((name) => name.endsWith(".log")).sort();
      await appendFile(join(f.path, segments.at(-1) as string), Buffer.from("not a record, just bytes on the disk"));

      const after = await f.open();
      assert.equal(text((await after.get("kept"))?.value), "1");
      assert.match(f.logs.join("\n"), /torn tail in .*bad magic byte/);
      // The tail was cut away: the next open finds nothing to report.
      await after.close();
      const lines = f.logs.length;
      await f.open();
      assert.ok(!f.logs.slice(lines).some((line) => line.includes("corrupted")), f.logs.slice(lines).join("\n"));
    } finally {
      await f.done();
    }
  });

  it("fails the answer to a write the disk refused, and every answer after it, naming the failure", async () => {
    const f = await fixture();
    const disk = failingFsync();
    const { openSegment } = disk;
    try {
      const store = await DurableResultStore.open(f.path, { log: () => {} }, { openSegment });
      await store.complete("before", "add", { state: "SUCCESS", value: bytes("1") });
      disk.failing = true;
      await assert.rejects(store.complete("refused", "add", { state: "SUCCESS", value: bytes("2") }), /fsync.*EIO/);
      await assert.rejects(
        store.get("before"),
        /fsync.*EIO/,
        "a read after the failure must not answer as if all were well",
      );
      await assert.rejects(store.claim("later"), /EIO|unusable/);
      await store.close().catch(() => undefined);
    } finally {
      await f.done();
    }
  });

  it("answers again once its failed log is reopened, and keeps across a restart the writes it refused meanwhile", async () => {
    const f = await fixture();
    const disk = failingFsync();
    const { openSegment } = disk;
    try {
      const logs: string[] = [];
      const store = await DurableResultStore.open(
        f.path,
        { log: (line) => logs.push(line) },
        { openSegment, reopenBackoff: { firstMs: 5, maxMs: 20 } },
      );
      await store.complete("before", "add", { state: "SUCCESS", value: bytes("1") });
      disk.failing = true;
      // Held in memory, refused on disk: a task's final state is never logged again by itself.
      await assert.rejects(store.complete("refused", "add", { state: "SUCCESS", value: bytes("2") }), /fsync.*EIO/);
      assert.ok(
        logs.some((line) => /the results log failed \(.*EIO/.test(line)),
        logs.join("\n"),
      );
      disk.failing = false;
      await within(
        (async () => {
          for (;;) {
            if (
              await store.get("before").then(
                () => true,
                () => false,
              )
            )
              return;
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        })(),
        scaled(5_000),
        "the store to answer again",
        () => logs.join("\n"),
      );
      assert.ok(
        logs.some((line) => /the results log is written again after \d+ attempt/.test(line)),
        logs.join("\n"),
      );
      await store.complete("after", "add", { state: "SUCCESS", value: bytes("3") });
      await store.close();
      const again = await f.open();
      for (const [id, value] of [
        ["before", "1"],
        ["refused", "2"],
        ["after", "3"],
      ]) {
        assert.equal(text((await again.get(id))?.value), value, `${id} after the restart`);
      }
    } finally {
      await f.done();
    }
  });

  it("refuses a directory another live process holds, naming the directory and the process", async () => {
    const f = await fixture();
    try {
      await mkdir(f.path, { recursive: true });
      // The test runner's parent stands for a node that is still running on this directory.
      await writeFile(join(f.path, "LOCK"), String(process.ppid));
      await assert.rejects(f.open(), (error: unknown) => {
        assert.ok(error instanceof DataDirLockedError);
        assert.match(
          error.message,
          new RegExp(`data directory .*results is in use by process ${process.ppid}: run one node per data directory`),
        );
        return true;
      });
    } finally {
      await f.done();
    }
  });

  it("reports a record it cannot read and replays the others", () => {
    const reasons: string[] = [];
    const good = new ResultLogEncoder().encode([logEntry.claim("kept", 0)]);
    const records = [new Uint8Array([0xc1]), new Uint8Array([0x92, 0x92, 0x63, 0x01, 0x05]), ...good];
    const { entries } = replayResultLog(records, 1_000, 0, (reason) => reasons.push(reason));
    assert.deepEqual(entries, [{ kind: "claim", key: "kept", at: 0 }]);
    assert.deepEqual(
      reasons.map((reason) => reason.replace(/: .*$/, "")),
      ["record 0 cannot be read", "record 1, entry 0", "record 1, entry 1 cannot be read"],
    );
    assert.match(reasons[1], /unknown kind 99/);
  });

  it("compacts the log to exactly the records the store still holds", async () => {
    let now = 1_000_000;
    const f = await fixture({ maxResults: 6, ttlMs: 10_000, now: () => now });
    try {
      const store = await f.open();
      await store.complete("expired", "add", { state: "SUCCESS", value: bytes("x") });
      now += 9_000;
      for (let i = 0; i < 20; i++) {
        await store.setState(`t${i}`, "add", "PENDING");
        await store.setState(`t${i}`, "add", "STARTED");
        await store.complete(`t${i}`, "add", { state: "SUCCESS", value: bytes(String(i)) });
      }
      await store.forget("t19");
      await store.saveGraph(twoStepGraph("wf"));
      await store.arrive("wf:1", 0);
      await store.claim("wf:sent:1");
      await store.claim("wf:sent:2");
      await store.release("wf:sent:2");
      now += 2_000;
      const held: string[] = [];
      for (let i = 0; i < 20; i++) if ((await store.get(`t${i}`)) !== undefined) held.push(`t${i}`);
      assert.ok(held.length >= 3 && held.length <= 6, `held ${held.join(",")}`);

      await store.compact();
      await store.close();
      const records = await rawLog(f.path);
      const { entries } = replayResultLog(records, 10_000, now, () => assert.fail("unreadable record"));
      const logged = records.reduce((sum, record) => sum + (decode(record) as unknown[]).length, 0);
      assert.equal(logged, entries.length, "one entry per live record or piece of bookkeeping, nothing dead");
      assert.deepEqual(
        entries.map((entry) =>
          entry.kind === "record"
            ? entry.record.id
            : entry.kind === "graph"
              ? `graph ${entry.graph.id}`
              : `${entry.kind} ${entry.key}`,
        ),
        [...held, "graph wf", "join wf:1", "claim wf:sent:1"],
      );
    } finally {
      await f.done();
    }
  });

  it("compacts by itself while running once the log outgrows compactAtBytes, keeping it bounded", async () => {
    const f = await fixture({ maxResults: 100, compactAtBytes: 16 * 1024, fsync: { intervalMs: 1_000 } });
    try {
      const store = await f.open();
      let largest = 0;
      for (let i = 0; i < 6_000; i++) {
        await store.complete(`t${i}`, "add", { state: "SUCCESS", value: bytes("result") });
        if (i % 500 === 0) largest = Math.max(largest, await rawSize(f.path));
      }
      assert.ok(
        f.logs.some((line) => /compacted the results log from \d+ to \d+ bytes/.test(line)),
        f.logs.join("\n"),
      );
      assert.ok(largest < 6_000 * 40, `the log reached ${largest} bytes`);
      await store.close();
      const after = await f.open();
      assert.equal(text((await after.get("t5999"))?.value), "result");
    } finally {
      await f.done();
    }
  });
});

/** Disk space the log's segments take (the hole an open segment is grown by takes none). */
const rawSize = async (path: string): Promise<number> => {
  let total = 0;
  for (const name of await readdir(path))
    if (name.endsWith(".log")) total += (await stat(join(path, name))).blocks * 512;
  return total;
};
