import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, rm, stat, symlink, writeFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import fc from "fast-check";
import { crc32, portableCrc32 } from "./crc32.ts";
import {
  DirectoryNotWritableError,
  LogClosedError,
  LogUnusableError,
  LogWriteError,
  RecordTooLargeError,
} from "./durable-log-errors.ts";
import { DurableLog, openDurableLog } from "./durable-log.ts";
import { InvalidArgumentError } from "../errors.ts";
import { segmentName } from "./log-directory.ts";
import { frameBytes } from "./log-record.ts";
import { skipUnless } from "../../tests/support/prerequisites.ts";
import { scaled } from "../../tests/support/waits.ts";
import {
  instrumentedDisk,
  osError,
  recordFor,
  recordsUpTo,
  reopen,
  segmentFiles,
  tempDir,
  text,
  within,
} from "./durable-log-test-support.ts";

/** A backoff no test outlives: the failed log stays failed until closed. */
const NO_REOPEN = { firstMs: 3_600_000, maxMs: 3_600_000 };

describe("crc32", () => {
  const vectors: [string, number][] = [
    ["", 0x00000000],
    ["a", 0xe8b7be43],
    ["123456789", 0xcbf43926],
    ["The quick brown fox jumps over the lazy dog", 0x414fa339],
  ];

  it("gives the standard CRC-32 check values, natively and in the table-driven fallback", () => {
    for (const [input, expected] of vectors) {
      assert.equal(crc32(text.encode(input)), expected, `crc32(${JSON.stringify(input)})`);
      assert.equal(portableCrc32(text.encode(input)), expected, `portableCrc32(${JSON.stringify(input)})`);
    }
    assert.equal(portableCrc32(new Uint8Array(32)), 0x190a55ad);
  });

  it("continues a checksum over data given in parts, and the fallback agrees with the native one", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
        const whole = new Uint8Array([...a, ...b]);
        assert.equal(crc32(b, crc32(a)), crc32(whole));
        assert.equal(portableCrc32(b, portableCrc32(a)), crc32(whole));
      }),
    );
  });
});

describe("DurableLog", () => {
  it("returns every record in append order after reopening, across many segments", async () => {
    const dir = await tempDir();
    const written = recordsUpTo(500);
    const { log, records, report } = await DurableLog.open(dir, { segmentBytes: 1024 });
    assert.deepEqual(records, []);
    assert.deepEqual(report, { records: 0, segments: 0, corrupted: [] });
    for (let i = 0; i < 250; i++) await log.append(written[i]);
    await log.appendMany(written.slice(250));
    await log.close();

    const files = await segmentFiles(dir);
    assert.ok(files.length > 20, `expected many segments, got ${files.length}`);
    assert.equal(files[0], segmentName(1));
    for (const name of files)
      assert.ok((await stat(join(dir, name))).size <= 1024, `${name} is larger than segmentBytes`);

    const again = await reopen(dir, { segmentBytes: 1024 });
    assert.deepEqual(again.records, written);
    assert.deepEqual(again.report, { records: 500, segments: files.length, corrupted: [] });
    await again.log.append(recordFor(500));
    await again.log.close();
    const third = await reopen(dir, { segmentBytes: 1024 });
    assert.deepEqual(third.records, recordsUpTo(501));
    await third.log.close();
  });

  it("reports its size as the bytes its segment files hold once closed", async () => {
    const dir = await tempDir();
    const { log } = await DurableLog.open(dir, { segmentBytes: 2048 });
    assert.equal(log.size, 0);
    const written = recordsUpTo(100);
    await log.appendMany(written);
    const expected = written.reduce((sum, r) => sum + frameBytes(r.length), 0);
    assert.equal(log.size, expected);
    // The open segment is grown ahead of its writes (a hole); closing cuts it back.
    await log.close();
    let onDisk = 0;
    for (const name of await segmentFiles(dir)) onDisk += (await stat(join(dir, name))).size;
    assert.equal(onDisk, expected);
  });

  it("keeps appending and recovering an empty record", async () => {
    const dir = await tempDir();
    const { log } = await DurableLog.open(dir);
    await log.appendMany([new Uint8Array(0), recordFor(1), new Uint8Array(0)]);
    await log.close();
    const { log: again, records } = await DurableLog.open(dir);
    assert.deepEqual(records, [new Uint8Array(0), recordFor(1), new Uint8Array(0)]);
    await again.close();
  });

  describe("group commit", () => {
    it("makes 1,000 concurrent appends durable with far fewer fsyncs, and recovers them all in order", async () => {
      const dir = await tempDir();
      const disk = instrumentedDisk();
      const { log } = await openDurableLog(dir, {}, { openSegment: disk.openSegment });
      const written = recordsUpTo(1000);
      await within(Promise.all(written.map((r) => log.append(r))), 10_000, "1,000 appends");
      assert.ok(disk.stats.datasyncs <= 20, `expected a few fsyncs for 1,000 appends, got ${disk.stats.datasyncs}`);
      await log.close();
      const again = await reopen(dir);
      assert.deepEqual(again.records, written);
      await again.log.close();
    });

    it("writes the appends that arrive during an fsync together, covered by one more fsync", async () => {
      const dir = await tempDir();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const inFsync = new Promise<void>((resolve) => (entered = resolve));
      const writes: number[] = [];
      const disk = instrumentedDisk({
        write: async (file, _path, data, position) => {
          writes.push(data.length);
          await file.write(data, position);
        },
        datasync: async (file) => {
          entered();
          await gate;
          await file.datasync();
        },
      });
      const { log } = await openDurableLog(dir, {}, { openSegment: disk.openSegment });
      const written = recordsUpTo(1000);
      const first = log.append(written[0]);
      await within(inFsync, 5_000, "the first fsync to start");
      // The rest arrive over many turns of the event loop while that fsync is held.
      const rest: Promise<void>[] = [];
      for (let i = 1; i < written.length; i++) {
        rest.push(log.append(written[i]));
        if (i % 100 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      }
      release();
      await within(Promise.all([first, ...rest]), 5_000, "1,000 appends");
      assert.equal(disk.stats.datasyncs, 2);
      assert.equal(writes.length, 2);
      await log.close();
      const again = await reopen(dir);
      assert.deepEqual(again.records, written);
      await again.log.close();
    });

    it("resolves an append only after an fsync covering it, under the default policy", async () => {
      const dir = await tempDir();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const inFsync = new Promise<void>((resolve) => (entered = resolve));
      const disk = instrumentedDisk({
        datasync: async (file) => {
          entered();
          await gate;
          await file.datasync();
        },
      });
      const { log } = await openDurableLog(dir, {}, { openSegment: disk.openSegment });
      let resolved = false;
      const pending = log.append(recordFor(0)).then(() => (resolved = true));
      await within(inFsync, 5_000, "the fsync to start");
      assert.equal(resolved, false, "the append resolved before its fsync finished");
      release();
      await within(pending, 5_000, "the append after its fsync");
      assert.equal(resolved, true);
      await log.close();
    });

    it("resolves appends once written under { intervalMs } and fsyncs them within the interval", async () => {
      const dir = await tempDir();
      const disk = instrumentedDisk();
      const { log } = await openDurableLog(dir, { fsync: { intervalMs: 20 } }, { openSegment: disk.openSegment });
      const synced = disk.nextSync();
      await within(Promise.all(recordsUpTo(100).map((r) => log.append(r))), 5_000, "100 appends");
      await within(synced, 2_000, "the interval fsync");
      assert.ok(disk.stats.datasyncs >= 1);
      await log.close();
      const again = await reopen(dir);
      assert.deepEqual(again.records, recordsUpTo(100));
      await again.log.close();
    });
  });

  describe("errors", () => {
    it("rejects a record above maxRecordBytes, naming its size and the maximum, and stays usable", async () => {
      const dir = await tempDir();
      const { log } = await DurableLog.open(dir, { maxRecordBytes: 100 });
      await assert.rejects(log.append(new Uint8Array(101)), (error: unknown) => {
        assert.ok(error instanceof RecordTooLargeError);
        assert.equal(error._tag, "RecordTooLargeError");
        assert.equal(error.message, "record of 101 bytes exceeds the log's maximum of 100 bytes (maxRecordBytes)");
        return true;
      });
      await assert.rejects(log.appendMany([recordFor(0), new Uint8Array(200)]), RecordTooLargeError);
      await log.append(new Uint8Array(100));
      await log.close();
      const again = await reopen(dir, { maxRecordBytes: 100 });
      assert.deepEqual(again.records, [new Uint8Array(100)]);
      await again.log.close();
    });

    it("rejects appends and compaction after close", async () => {
      const dir = await tempDir();
      const { log } = await DurableLog.open(dir);
      const closed = log.close();
      await assert.rejects(log.append(recordFor(0)), (error: unknown) => {
        assert.ok(error instanceof LogClosedError);
        assert.equal(error.message, `durable log at ${dir} is closed (cannot append)`);
        return true;
      });
      await closed;
      await assert.rejects(log.compact([]), LogClosedError);
      await assert.rejects(log.appendMany([recordFor(0)]), LogClosedError);
      await log.close();
    });

    it("rejects the append a full disk cut short, naming segment and code, then every append until reopened", async () => {
      const dir = await tempDir();
      let budget = 0;
      const disk = instrumentedDisk({
        // Like the kernel on a full disk: write what fits, then fail with ENOSPC.
        write: async (file, _path, data, position) => {
          if (data.length <= budget) {
            budget -= data.length;
            return file.write(data, position);
          }
          const part = data.subarray(0, budget);
          budget = 0;
          if (part.length > 0) await file.write(part, position);
          throw osError("ENOSPC", "no space left on device, write");
        },
      });
      const written = recordsUpTo(10);
      budget = written.reduce((sum, r) => sum + frameBytes(r.length), 0) + 20;
      // No reopen before the close: this is about what the next open finds.
      const { log } = await openDurableLog(dir, {}, { openSegment: disk.openSegment, reopenBackoff: NO_REOPEN });
      await log.appendMany(written);
      const segment = join(dir, segmentName(1));
      await assert.rejects(log.append(recordFor(10)), (error: unknown) => {
        assert.ok(error instanceof LogWriteError);
        assert.equal(error.code, "ENOSPC");
        assert.equal(error.segment, segment);
        assert.equal(error.message, `cannot write segment ${segment}: ENOSPC (no space left on device, write)`);
        return true;
      });
      budget = Number.MAX_SAFE_INTEGER;
      for (const attempt of [() => log.append(recordFor(11)), () => log.compact([])]) {
        await assert.rejects(attempt(), (error: unknown) => {
          assert.ok(error instanceof LogUnusableError);
          assert.match(error.message, /refuses records since a write failed .*ENOSPC.*it is reopening/);
          return true;
        });
      }
      await log.close();

      const again = await reopen(dir);
      assert.deepEqual(again.records, written);
      assert.equal(again.report.corrupted.length, 1);
      assert.equal(again.report.corrupted[0].droppedBytes, 20);
      await again.log.append(recordFor(12));
      await again.log.close();
      const healed = await reopen(dir);
      assert.deepEqual(healed.records, [...written, recordFor(12)]);
      await healed.log.close();
    });

    it("rejects with the OS code when the disk itself reports ENOSPC (a segment on /dev/full)", {
      skip: skipUnless(existsSync("/dev/full"), "/dev/full is missing on this machine"),
    }, async () => {
      const dir = await tempDir();
      const { log } = await openDurableLog(dir, { segmentBytes: 256 }, { reopenBackoff: NO_REOPEN });
      await log.appendMany(recordsUpTo(2));
      // The next segment file already exists as a link to a device that is always full.
      const next = join(dir, segmentName(2));
      await symlink("/dev/full", next);
      await assert.rejects(log.appendMany(recordsUpTo(10)), (error: unknown) => {
        assert.ok(error instanceof LogWriteError);
        assert.equal(error.code, "ENOSPC");
        assert.equal(error.segment, next);
        return true;
      });
      await assert.rejects(log.append(recordFor(0)), LogUnusableError);
      await log.close();
      await rm(next);
      const again = await reopen(dir, { segmentBytes: 256 });
      // What was written before the failing segment survives, in order.
      assert.deepEqual(again.records, [...recordsUpTo(2), ...recordsUpTo(10)].slice(0, again.records.length));
      assert.ok(again.records.length >= 2);
      await again.log.close();
    });

    it("rejects the append whose fsync failed, naming the segment and the code", async () => {
      const dir = await tempDir();
      const disk = instrumentedDisk({ datasync: async () => Promise.reject(osError("EIO", "i/o error, fdatasync")) });
      const { log } = await openDurableLog(dir, {}, { openSegment: disk.openSegment });
      await assert.rejects(log.append(recordFor(0)), (error: unknown) => {
        assert.ok(error instanceof LogWriteError);
        assert.equal(error.operation, "fsync");
        assert.match(error.message, /^cannot fsync segment .*0000000000000001\.log: EIO \(i\/o error, fdatasync\)$/);
        return true;
      });
      await assert.rejects(log.append(recordFor(1)), LogUnusableError);
      await log.close();
    });

    it("reports a failed background fsync at close when no append did", async () => {
      const dir = await tempDir();
      const disk = instrumentedDisk({ datasync: async () => Promise.reject(osError("EIO", "i/o error, fdatasync")) });
      const { log } = await openDurableLog(dir, { fsync: { intervalMs: 10 } }, { openSegment: disk.openSegment });
      const synced = disk.nextSync();
      await log.append(recordFor(0));
      await within(synced, 2_000, "the interval fsync");
      await assert.rejects(log.close(), (error: unknown) => {
        assert.ok(error instanceof LogWriteError);
        assert.equal(error.code, "EIO");
        return true;
      });
    });

    it("refuses a log directory that cannot be created", async () => {
      const dir = await tempDir();
      await writeFile(join(dir, "file"), "");
      const target = join(dir, "file", "log");
      await assert.rejects(DurableLog.open(target), (error: unknown) => {
        assert.ok(error instanceof DirectoryNotWritableError);
        assert.equal(error.code, "ENOTDIR");
        assert.match(error.message, new RegExp(`^log directory ${target} is not writable: ENOTDIR`));
        return true;
      });
    });

    it("refuses a log directory without write permission", { timeout: 180_000 }, async () => {
      const dir = await tempDir();
      const target = join(dir, "log");
      await mkdir(target);
      await chmod(target, 0o555);
      try {
        // Root writes through permission bits: as root, open the log in a child without the capabilities that allow it.
        const outcome = process.getuid?.() === 0 ? await openWithoutPrivileges(target) : await openHere(target);
        assert.equal(outcome.tag, "DirectoryNotWritableError", JSON.stringify(outcome));
        assert.equal(outcome.code, "EACCES");
        assert.match(outcome.message ?? "", new RegExp(`^log directory ${target} is not writable: EACCES`));
      } finally {
        await chmod(target, 0o755);
      }
    });

    it("rejects nonsensical options, naming the option", async () => {
      const dir = await tempDir();
      await assert.rejects(DurableLog.open(dir, { segmentBytes: 0 }), InvalidArgumentError);
      await assert.rejects(DurableLog.open(dir, { maxRecordBytes: 2 ** 33 }), /invalid maxRecordBytes/);
      await assert.rejects(DurableLog.open(dir, { fsync: { intervalMs: -1 } }), /invalid fsync\.intervalMs/);
    });
  });
});

interface OpenOutcome {
  readonly opened?: boolean;
  readonly tag?: string;
  readonly code?: string;
  readonly message?: string;
}

const openHere = async (dir: string): Promise<OpenOutcome> => {
  try {
    const { log } = await DurableLog.open(dir);
    await log.close();
    return { opened: true };
  } catch (error) {
    const { _tag, code, message } = error as { _tag?: string; code?: string; message: string };
    return { tag: _tag, code, message };
  }
};

/** Open `dir` in a child process without root's power to bypass file permissions (the suite runs as root in CI). */
const openWithoutPrivileges = (dir: string): Promise<OpenOutcome> => {
  const fixture = fileURLToPath(new URL("./test-fixtures/open-log.ts", import.meta.url));
  const args = ["--bounding-set=-dac_override,-dac_read_search,-fowner", "--", process.execPath, "--import", "tsx"];
  // Started through tsx: many seconds on a loaded machine.
  const options = { encoding: "utf8" as const, timeout: scaled(120_000) };
  return new Promise((resolve, reject) => {
    execFile("setpriv", [...args, fixture, dir], options, (error, stdout, stderr) => {
      const line = stdout.trim().split("\n").at(-1) ?? "";
      if (line.startsWith("{")) return resolve(JSON.parse(line) as OpenOutcome);
      if (error !== null)
        return reject(new Error(`could not run the fixture under setpriv (util-linux): ${error.message}; ${stderr}`));
      reject(new Error(`the fixture printed no outcome: ${stderr}`));
    });
  });
};
