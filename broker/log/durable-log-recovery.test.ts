import assert from "node:assert/strict";
import { cp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import fc from "fast-check";
import { LogRecoveryError, LogWriteError, RecordTooLargeError } from "./durable-log-errors.ts";
import { DurableLog, openDurableLog } from "./durable-log.ts";
import { COMPACTION_MARKER, segmentName, stagedSegmentName } from "./log-directory.ts";
import { frameBytes, RECORD_HEADER_BYTES } from "./log-record.ts";
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

describe("DurableLog", () => {
  describe("recovery", () => {
    it("detects a torn last record, reports its offset, keeps every earlier record and appends after it", async () => {
      const dir = await tempDir();
      const written = recordsUpTo(50);
      const lastOffset = written.slice(0, 49).reduce((sum, r) => sum + frameBytes(r.length), 0);
      const fileSize = lastOffset + frameBytes(written[49].length);
      // Cut inside the header, right after it, and inside the payload.
      for (const cut of [lastOffset + 3, lastOffset + RECORD_HEADER_BYTES, fileSize - 1]) {
        await rm(dir, { recursive: true, force: true });
        const { log } = await DurableLog.open(dir);
        await log.appendMany(written);
        await log.close();
        await truncate(join(dir, segmentName(1)), cut);

        const torn = await reopen(dir);
        assert.deepEqual(torn.records, written.slice(0, 49));
        assert.equal(torn.report.corrupted.length, 1);
        assert.deepEqual(torn.corruptions, torn.report.corrupted);
        const [report] = torn.report.corrupted;
        assert.equal(report.segment, join(dir, segmentName(1)));
        assert.equal(report.offset, lastOffset);
        assert.equal(report.droppedBytes, cut - lastOffset);
        assert.match(report.reason, cut - lastOffset < RECORD_HEADER_BYTES ? /incomplete header/ : /past the end/);
        await torn.log.append(text.encode("after the tear"));
        await torn.log.close();

        const healed = await reopen(dir);
        assert.deepEqual(healed.records, [...written.slice(0, 49), text.encode("after the tear")]);
        assert.deepEqual(healed.report.corrupted, []);
        await healed.log.close();
      }
    });

    it("keeps every record but the one a flipped bit damaged, wherever the bit is, and quarantines the damaged bytes", async () => {
      const root = await tempDir();
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 20 }),
          fc.nat(),
          async (written, pick) => {
            const dir = join(root, String(run++));
            const { log } = await DurableLog.open(dir);
            await log.appendMany(written);
            await log.close();
            const path = join(dir, segmentName(1));
            const bytes = await readFile(path);
            const original = Uint8Array.from(bytes);
            const bit = pick % (bytes.length * 8);
            bytes[bit >> 3] ^= 1 << (bit & 7);
            await writeFile(path, bytes);

            const offsets: number[] = [];
            let at = 0;
            for (const r of written) {
              offsets.push(at);
              at += frameBytes(r.length);
            }
            const damaged = offsets.findLastIndex((offset) => offset <= bit >> 3);
            const last = damaged === written.length - 1;
            const again = await reopen(dir);
            assert.deepEqual(again.records, [...written.slice(0, damaged), ...written.slice(damaged + 1)]);
            assert.equal(again.report.corrupted.length, 1);
            const [report] = again.report.corrupted;
            assert.equal(report.offset, offsets[damaged]);
            // The last record has nothing intact behind it: a torn tail, cut off. Any other is damage in the middle, kept aside.
            assert.equal(report.kind, last ? "torn" : "damaged");
            if (!last) {
              const end = offsets[damaged] + frameBytes(written[damaged].length);
              assert.deepEqual(
                Uint8Array.from(await readFile(report.quarantine as string)),
                Uint8Array.from(bytes.subarray(offsets[damaged], end)),
              );
              assert.notDeepEqual(bytes.subarray(offsets[damaged], end), original.subarray(offsets[damaged], end));
            }
            await again.log.close();
            await rm(dir, { recursive: true, force: true });
          },
        ),
        { numRuns: 150 },
      );
    });

    it("recovers every intact confirmed record after a flip in any byte of a record in the middle of 100", async () => {
      const root = await tempDir();
      const written = recordsUpTo(100);
      const offsets: number[] = [];
      let at = 0;
      for (const r of written) {
        offsets.push(at);
        at += frameBytes(r.length);
      }
      const { log } = await DurableLog.open(join(root, "source"));
      await log.appendMany(written);
      await log.close();
      const clean = await readFile(join(root, "source", segmentName(1)));
      const middle = 50;
      const start = offsets[middle];
      const end = start + frameBytes(written[middle].length);
      for (let position = start; position < end; position++) {
        const dir = join(root, `flip-${position}`);
        await cp(join(root, "source"), dir, { recursive: true });
        const bytes = Uint8Array.from(clean);
        bytes[position] ^= 0xff;
        await writeFile(join(dir, segmentName(1)), bytes);
        const again = await reopen(dir);
        assert.equal(again.records.length, 99, `a flip at byte ${position - start} of record ${middle}`);
        assert.deepEqual(again.records, [...written.slice(0, middle), ...written.slice(middle + 1)]);
        await again.log.close();
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("keeps every other record of a damaged earlier segment and the segments after it", async () => {
      const dir = await tempDir();
      const written = recordsUpTo(60);
      const { log } = await DurableLog.open(dir, { segmentBytes: 512 });
      await log.appendMany(written);
      await log.close();
      const files = await segmentFiles(dir);
      assert.ok(files.length >= 3);
      // Records per segment, from the open that reads them intact.
      const perSegment: number[] = [];
      for (const name of files) {
        const bytes = await readFile(join(dir, name));
        let count = 0;
        for (let at = 0; at < bytes.length; count++) at += frameBytes(bytes.readUInt32LE(at + 4));
        perSegment.push(count);
      }
      const second = join(dir, files[1]);
      const bytes = await readFile(second);
      const size = bytes.length;
      const firstFrame = frameBytes(bytes.readUInt32LE(4));
      bytes[firstFrame + RECORD_HEADER_BYTES] ^= 0x10; // the payload of the segment's second record
      await writeFile(second, bytes);

      const again = await reopen(dir, { segmentBytes: 512 });
      const damaged = perSegment[0] + 1;
      assert.deepEqual(again.records, [...written.slice(0, damaged), ...written.slice(damaged + 1)]);
      assert.equal(again.report.corrupted.length, 1);
      const [report] = again.report.corrupted;
      assert.equal(report.segment, second);
      assert.equal(report.offset, firstFrame);
      assert.equal(report.kind, "damaged");
      assert.match(report.reason, /checksum mismatch/);
      assert.equal(
        (await stat(second)).size,
        size,
        "nothing is cut from a segment with intact records after the damage",
      );
      assert.equal((await readFile(report.quarantine as string)).length, frameBytes(written[damaged].length));
      await again.log.close();
    });

    it("stops at a foreign tail and names it", async () => {
      const dir = await tempDir();
      const { log } = await DurableLog.open(dir);
      await log.appendMany(recordsUpTo(3));
      await log.close();
      const path = join(dir, segmentName(1));
      const size = (await stat(path)).size;
      await writeFile(path, new Uint8Array(4096).fill(0x41), { flag: "a" });
      const again = await reopen(dir);
      assert.deepEqual(again.records, recordsUpTo(3));
      assert.deepEqual(
        again.report.corrupted.map(({ kind, offset, droppedBytes, reason }) => ({
          kind,
          offset,
          droppedBytes,
          reason,
        })),
        [{ kind: "torn", offset: size, droppedBytes: 4096, reason: "bad magic byte 0x41" }],
      );
      await again.log.close();
    });

    it("cuts the zero tail a crash leaves in a segment grown ahead of its writes, silently, and appends where the records end", async () => {
      const dir = await tempDir();
      const { log } = await DurableLog.open(dir);
      await log.appendMany(recordsUpTo(3));
      const path = join(dir, segmentName(1));
      const written = recordsUpTo(3).reduce((sum, r) => sum + frameBytes(r.length), 0);
      assert.ok((await stat(path)).size > written, "the open segment is grown ahead of its writes");
      // A crash: the segment is left as it is, grown, with no close to cut it back.
      const copy = await tempDir();
      await cp(dir, copy, { recursive: true });
      await log.close();
      assert.equal((await stat(path)).size, written, "close cuts the segment back to what was written");

      await rm(join(copy, "LOCK"), { force: true });
      const again = await reopen(copy);
      assert.deepEqual(again.records, recordsUpTo(3));
      assert.deepEqual(again.report.corrupted, []);
      await again.log.append(text.encode("after the crash"));
      await again.log.close();
      const healed = await reopen(copy);
      assert.deepEqual(healed.records, [...recordsUpTo(3), text.encode("after the crash")]);
      assert.deepEqual(healed.report.corrupted, []);
      await healed.log.close();
    });

    it("treats a length field above maxRecordBytes as damage", async () => {
      const dir = await tempDir();
      const { log } = await DurableLog.open(dir);
      await log.appendMany([recordFor(0), new Uint8Array(300)]);
      await log.close();
      const again = await reopen(dir, { maxRecordBytes: 200 });
      assert.deepEqual(again.records, [recordFor(0)]);
      assert.match(again.report.corrupted[0].reason, /record length 300 exceeds the 200-byte maximum/);
      await again.log.close();
    });
  });

  describe("compaction", () => {
    it("keeps exactly the live records, shrinks the log, and appends after them", async () => {
      const dir = await tempDir();
      const written = recordsUpTo(300);
      const { log } = await DurableLog.open(dir, { segmentBytes: 2048 });
      await log.appendMany(written);
      const before = log.size;
      const oldFiles = await segmentFiles(dir);
      const live = written.filter((_, i) => i % 3 === 0);
      await log.compact(live);
      assert.ok(log.size < before / 2, `size ${log.size} did not shrink from ${before}`);
      assert.equal(
        log.size,
        live.reduce((sum, r) => sum + frameBytes(r.length), 0),
      );
      await log.append(text.encode("after compaction"));
      await log.close();

      const files = await readdir(dir);
      for (const name of oldFiles) assert.ok(!files.includes(name), `old segment ${name} is still there`);
      assert.deepEqual(
        files.filter((name) => !name.endsWith(".log")),
        [],
      );
      const again = await reopen(dir, { segmentBytes: 2048 });
      assert.deepEqual(again.records, [...live, text.encode("after compaction")]);
      await again.log.close();
    });

    it("puts appends issued while compacting after the live records", async () => {
      const dir = await tempDir();
      const { log } = await DurableLog.open(dir);
      await log.appendMany(recordsUpTo(10));
      const compacted = log.compact([recordFor(3)]);
      const appended = log.append(recordFor(10));
      await within(Promise.all([compacted, appended]), 5_000, "compaction and append");
      await log.close();
      const again = await reopen(dir);
      assert.deepEqual(again.records, [recordFor(3), recordFor(10)]);
      await again.log.close();
    });

    it("recovers either the whole old log or the whole new one after a crash at any step", async () => {
      const dir = await tempDir();
      const snapshots = await tempDir();
      const old = recordsUpTo(200);
      const live = old.filter((_, i) => i % 4 === 1);
      const steps: string[] = [];
      const { log } = await openDurableLog(
        dir,
        { segmentBytes: 1024 },
        {
          // A copy of the directory after each durable step is what a crash right then leaves.
          onCompactionStep: async (step) => {
            await cp(dir, join(snapshots, String(steps.length)), { recursive: true });
            steps.push(step);
          },
        },
      );
      await log.appendMany(old);
      await log.compact(live);
      await log.close();

      assert.ok(
        steps.some((s) => s.startsWith("staged")) && steps.some((s) => s.startsWith("removed")),
        steps.join(", "),
      );
      const committed = steps.indexOf("committed");
      assert.ok(committed > 0);
      for (let i = 0; i < steps.length; i++) {
        const snapshot = join(snapshots, String(i));
        const recovered = await reopen(snapshot, { segmentBytes: 1024 });
        assert.deepEqual(recovered.report.corrupted, [], `after "${steps[i]}"`);
        assert.deepEqual(recovered.records, i < committed ? old : live, `after "${steps[i]}"`);
        await recovered.log.append(text.encode("next"));
        await recovered.log.close();
        const leftovers = (await readdir(snapshot)).filter((name) => !name.endsWith(".log"));
        assert.deepEqual(leftovers, [], `after "${steps[i]}"`);
        const twice = await reopen(snapshot, { segmentBytes: 1024 });
        assert.deepEqual(twice.records, [...(i < committed ? old : live), text.encode("next")], `after "${steps[i]}"`);
        await twice.log.close();
      }
    });

    it("ignores a half-written staged segment and marker left by a crash before the commit", async () => {
      const dir = await tempDir();
      const { log } = await DurableLog.open(dir);
      await log.appendMany(recordsUpTo(5));
      await log.close();
      await writeFile(join(dir, stagedSegmentName(2)), new Uint8Array([0xce, 1, 0, 0, 9]));
      await writeFile(join(dir, "compaction.commit.tmp"), "celerity durable log compaction: first seg");
      const again = await reopen(dir);
      assert.deepEqual(again.records, recordsUpTo(5));
      assert.deepEqual((await readdir(dir)).sort(), [segmentName(1)]);
      await again.log.close();
    });

    it("refuses to guess when the compaction marker is unreadable", async () => {
      const dir = await tempDir();
      const { log } = await DurableLog.open(dir);
      await log.append(recordFor(0));
      await log.close();
      await writeFile(join(dir, COMPACTION_MARKER), "garbage");
      await assert.rejects(DurableLog.open(dir), (error: unknown) => {
        assert.ok(error instanceof LogRecoveryError);
        assert.match(error.message, /compaction marker compaction\.commit is damaged \("garbage"\)/);
        return true;
      });
    });

    it("refuses to finish a compaction whose marker names other segments than it wrote, and changes nothing", async () => {
      const dir = await tempDir();
      const { log } = await DurableLog.open(dir, { segmentBytes: 1024 });
      await log.appendMany(recordsUpTo(100));
      await log.close();
      const before = await segmentFiles(dir);
      assert.ok(before.length >= 3);
      // An intact-looking marker whose first segment lies past every segment here: finishing would remove them all.
      const first = Number(before.at(-1)!.slice(0, 16)) + 5;
      const line = `celerity durable log compaction: first segment ${segmentName(first)}, last segment ${segmentName(first)}`;
      const { crc32 } = await import("./crc32.ts");
      const crc = crc32(text.encode(line)).toString(16).padStart(8, "0");
      await writeFile(join(dir, COMPACTION_MARKER), `${line}, crc32 ${crc}\n`);
      await assert.rejects(DurableLog.open(dir), (error: unknown) => {
        assert.ok(error instanceof LogRecoveryError);
        assert.match(error.message, new RegExp(`${segmentName(first)} is in neither its staged nor its final form`));
        assert.match(error.message, /nothing was changed/);
        return true;
      });
      assert.deepEqual(await segmentFiles(dir), before);
      // A flipped digit in a real marker fails its checksum the same way.
      const flipped = `${line.replace(segmentName(first), segmentName(first - 4))}, crc32 ${crc}\n`;
      await writeFile(join(dir, COMPACTION_MARKER), flipped);
      await assert.rejects(DurableLog.open(dir), /compaction marker compaction\.commit is damaged/);
      assert.deepEqual(await segmentFiles(dir), before);
    });

    describe("a compaction marker in the previous release's format", () => {
      const fixture = async (name: string): Promise<string> => {
        const dir = await tempDir();
        await cp(fileURLToPath(new URL(`./test-fixtures/old-compaction-marker/${name}/`, import.meta.url)), dir, {
          recursive: true,
        });
        return dir;
      };
      const compacted = Array.from({ length: 10 }, (_, i) => text.encode(`old release record ${20 + i}`));

      for (const name of ["committed", "old-segments-removed"]) {
        it(`finishes the compaction it committed when the segments confirm the marker (${name})`, async () => {
          const dir = await fixture(name);
          const opened = await reopen(dir);
          assert.deepEqual(opened.records, compacted);
          assert.equal(opened.report.corrupted.length, 0);
          assert.deepEqual((await readdir(dir)).filter((f) => f !== "LOCK").sort(), [segmentName(6), segmentName(7)]);
          await opened.log.append(text.encode("new"));
          await opened.log.close();
          const again = await reopen(dir);
          assert.deepEqual(again.records, [...compacted, text.encode("new")]);
          await again.log.close();
        });
      }

      it("refuses, changing nothing, when the segments cannot confirm the marker (partly renamed)", async () => {
        const dir = await fixture("partly-renamed");
        const before = (await readdir(dir)).sort();
        await assert.rejects(DurableLog.open(dir), (error: unknown) => {
          assert.ok(error instanceof LogRecoveryError);
          assert.match(
            error.message,
            /compaction marker compaction\.commit is in the previous release's format, naming 0000000000000006\.log .* do not confirm it: finishing would remove every segment below it; nothing was changed/,
          );
          return true;
        });
        assert.deepEqual((await readdir(dir)).sort(), before);
      });

      it("refuses an old-format marker whose digits are damaged, or that names another segment than the staged ones", async () => {
        const dir = await fixture("committed");
        const before = (await readdir(dir)).sort();
        for (const [marker, reason] of [
          ["celerity durable log compaction: first segment 00000000000x0006.log\n", /is damaged/],
          ["celerity durable log compaction: first segment 0000000000000004.log\n", /do not confirm it/],
          ["celerity durable log compaction: first segment 0000000000000007.log\n", /do not confirm it/],
        ] as const) {
          await writeFile(join(dir, COMPACTION_MARKER), marker);
          await assert.rejects(DurableLog.open(dir), reason);
          assert.deepEqual((await readdir(dir)).sort(), before);
        }
      });
    });

    it("refuses to start over a gap in the segments' numbers, naming the missing one, and changes nothing", async () => {
      const dir = await tempDir();
      const { log } = await DurableLog.open(dir, { segmentBytes: 512 });
      await log.appendMany(recordsUpTo(60));
      await log.close();
      const files = await segmentFiles(dir);
      assert.ok(files.length >= 3);
      await rm(join(dir, files[1]));
      await assert.rejects(DurableLog.open(dir, { segmentBytes: 512 }), (error: unknown) => {
        assert.ok(error instanceof LogRecoveryError);
        assert.match(error.message, new RegExp(`segment ${files[1].replace(".", "\\.")} is missing between`));
        return true;
      });
      assert.deepEqual(await segmentFiles(dir), [files[0], ...files.slice(2)]);
    });

    it("quarantines an unreadable tail of an earlier segment instead of cutting it", async () => {
      const dir = await tempDir();
      const written = recordsUpTo(60);
      const { log } = await DurableLog.open(dir, { segmentBytes: 512 });
      await log.appendMany(written);
      await log.close();
      const files = await segmentFiles(dir);
      const first = join(dir, files[0]);
      const bytes = await readFile(first);
      let count = 0;
      let lastFrame = 0;
      for (let at = 0; at < bytes.length; count++) {
        lastFrame = at;
        at += frameBytes(bytes.readUInt32LE(at + 4));
      }
      bytes[lastFrame + RECORD_HEADER_BYTES] ^= 0x01; // the payload of the segment's last record
      await writeFile(first, bytes);

      const again = await reopen(dir, { segmentBytes: 512 });
      assert.deepEqual(again.records, [...written.slice(0, count - 1), ...written.slice(count)]);
      const [report] = again.report.corrupted;
      assert.equal(again.report.corrupted.length, 1);
      assert.equal(report.kind, "damaged");
      assert.equal(report.droppedBytes, 0);
      assert.equal((await stat(first)).size, bytes.length, "nothing is cut from a segment appends went past");
      assert.deepEqual(await readFile(report.quarantine as string), bytes.subarray(lastFrame));
      await again.log.close();
    });

    it("leaves the old log intact and usable when writing the new segments fails", async () => {
      const dir = await tempDir();
      const disk = instrumentedDisk({
        write: async (file, path, data, position) => {
          if (path.endsWith(".compact")) throw osError("ENOSPC", "no space left on device, write");
          await file.write(data, position);
        },
      });
      const { log } = await openDurableLog(dir, {}, { openSegment: disk.openSegment });
      await log.appendMany(recordsUpTo(20));
      await assert.rejects(log.compact(recordsUpTo(5)), (error: unknown) => {
        assert.ok(error instanceof LogWriteError);
        assert.equal(error.code, "ENOSPC");
        assert.match(error.message, /\.log\.compact: ENOSPC/);
        return true;
      });
      await log.append(recordFor(20));
      await log.close();
      assert.deepEqual(await readdir(dir), [segmentName(1)]);
      const again = await reopen(dir);
      assert.deepEqual(again.records, recordsUpTo(21));
      await again.log.close();
    });

    it("rejects a live record above maxRecordBytes and keeps the old log", async () => {
      const dir = await tempDir();
      const { log } = await DurableLog.open(dir, { maxRecordBytes: 100 });
      await log.appendMany(recordsUpTo(3));
      await assert.rejects(log.compact([recordFor(0), new Uint8Array(101)]), RecordTooLargeError);
      await log.close();
      const again = await reopen(dir);
      assert.deepEqual(again.records, recordsUpTo(3));
      await again.log.close();
    });
  });
});
