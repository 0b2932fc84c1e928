// A log whose write or fsync failed reopens itself from what is known durable and takes
// appends again, without a restart: nothing confirmed is lost, nothing refused comes back.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { scaled } from "../../tests/support/waits.ts";
import { LogUnusableError, LogWriteError } from "./durable-log-errors.ts";
import { type LogReopened, openDurableLog } from "./durable-log.ts";
import { instrumentedDisk, osError, recordFor, reopen, tempDir, within } from "./durable-log-test-support.ts";
import { reopenDelay } from "./log-reopen.ts";

const FAST = { firstMs: 5, maxMs: 40 };

/** A disk that can be made to fail writes or fsyncs with `code` until told otherwise. */
const switchableDisk = () => {
  const fault: { write?: string; datasync?: string } = {};
  const disk = instrumentedDisk({
    write: (file, _path, data, position) =>
      fault.write === undefined ? file.write(data, position) : Promise.reject(osError(fault.write, "injected")),
    datasync: (file) =>
      fault.datasync === undefined ? file.datasync() : Promise.reject(osError(fault.datasync, "injected")),
  });
  return { ...disk, fault };
};

/** A log on `disk` with listeners that record its failures and resolve `reopened` each time it reopens. */
const watchedLog = async (dir: string, disk: ReturnType<typeof switchableDisk>, fsync?: { intervalMs: number }) => {
  const events: string[] = [];
  let wake: ((info: LogReopened) => void) | undefined;
  const { log } = await openDurableLog(
    dir,
    {
      ...(fsync === undefined ? {} : { fsync }),
      onFailure: (error) => events.push(`failed: ${error.message}`),
      onReopenFailed: (error, attempts) => events.push(`attempt ${attempts} failed: ${error.message}`),
      onReopen: (info) => {
        events.push(`reopened after ${info.attempts}`);
        wake?.(info);
      },
    },
    { openSegment: disk.openSegment, reopenBackoff: FAST },
  );
  const reopened = () =>
    within(new Promise<LogReopened>((resolve) => (wake = resolve)), scaled(5_000), "the log to reopen", () =>
      events.join("\n"),
    );
  return { log, events, reopened };
};

describe("a durable log after a failed write or fsync", () => {
  it("waits 100 ms before the first attempt to reopen, doubling to 5 s", () => {
    const backoff = { firstMs: 100, maxMs: 5_000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 20].map((attempt) => reopenDelay(backoff, attempt)),
      [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000],
    );
  });

  it("refuses appends while the disk is full, then takes them again once space is freed, losing nothing confirmed", async () => {
    const dir = await tempDir();
    const disk = switchableDisk();
    const { log, events, reopened } = await watchedLog(dir, disk);
    const confirmed = [recordFor(0), recordFor(1)];
    await log.appendMany(confirmed);
    disk.fault.write = "ENOSPC";
    const back = reopened();
    await assert.rejects(log.append(recordFor(100)), (error: unknown) => {
      assert.ok(error instanceof LogWriteError);
      assert.equal(error.code, "ENOSPC");
      return true;
    });
    await assert.rejects(log.append(recordFor(101)), (error: unknown) => {
      assert.ok(error instanceof LogUnusableError);
      assert.match(error.message, /refuses records since a write failed \(cannot write segment .*ENOSPC/);
      return true;
    });
    // Attempts fail while the disk stays full (the fresh segment cannot be written), then space is freed.
    disk.fault.datasync = "ENOSPC";
    await within(
      (async () => {
        while (!events.some((line) => line.startsWith("attempt 2 failed"))) await new Promise((r) => setTimeout(r, 5));
      })(),
      scaled(5_000),
      "two failed attempts to reopen",
      () => events.join("\n"),
    );
    disk.fault.write = undefined;
    disk.fault.datasync = undefined;
    const info = await back;
    assert.ok(info.attempts >= 3, events.join("\n"));
    assert.match(info.failure.message, /ENOSPC/);
    assert.match(info.segment, /0000000000000002\.log$/);
    await log.append(recordFor(2));
    await log.close();
    const again = await reopen(dir);
    assert.deepEqual(again.records, [...confirmed, recordFor(2)], "the confirmed records and nothing refused");
    assert.equal(again.report.corrupted.length, 0, "the failed segment was cut back to whole records");
    await again.log.close();
  });

  it("refuses the batch whose fsync failed, cuts its records off the disk, and takes later appends", async () => {
    const dir = await tempDir();
    const disk = switchableDisk();
    const { log, reopened } = await watchedLog(dir, disk);
    await log.append(recordFor(0));
    disk.fault.datasync = "EIO";
    const back = reopened();
    // The write reached the file; only the fsync failed. Its bytes must not count as the log's.
    const refused = await Promise.allSettled([log.append(recordFor(90)), log.append(recordFor(91))]);
    assert.deepEqual(
      refused.map((r) => r.status),
      ["rejected", "rejected"],
    );
    assert.match(String((refused[0] as PromiseRejectedResult).reason), /cannot fsync segment .*EIO/);
    disk.fault.datasync = undefined;
    await back;
    await log.appendMany([recordFor(1), recordFor(2)]);
    await log.close();
    const again = await reopen(dir);
    assert.deepEqual(again.records, [recordFor(0), recordFor(1), recordFor(2)]);
    await again.log.close();
  });

  it("keeps, after a failed interval fsync, only what the last successful fsync covered, and goes on", async () => {
    const dir = await tempDir();
    const disk = switchableDisk();
    const { log, reopened } = await watchedLog(dir, disk, { intervalMs: 5 });
    await log.append(recordFor(0));
    await within(disk.nextSync(), scaled(2_000), "the first interval fsync");
    disk.fault.datasync = "EIO";
    const back = reopened();
    const failedSync = disk.nextSync();
    // Confirmed once written, as the interval policy does: a failed fsync loses them, as a power loss would.
    await log.appendMany([recordFor(1), recordFor(2)]);
    await within(failedSync, scaled(2_000), "the failing interval fsync");
    await assert.rejects(log.append(recordFor(50)), LogUnusableError);
    disk.fault.datasync = undefined;
    await back;
    await log.append(recordFor(3));
    await log.close();
    const again = await reopen(dir);
    assert.deepEqual(again.records, [0, 3].map(recordFor));
    assert.equal(again.report.corrupted.length, 0);
    await again.log.close();
  });
});
