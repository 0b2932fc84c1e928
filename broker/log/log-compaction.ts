// Compaction replaces every segment by new ones, numbered above all old ones,
// without a moment where a crash leaves a mix:
//
//   1. stage    write the live records to "<seq>.log.compact" files, fsync them and the directory
//   2. prepare  write the marker "compaction.commit.tmp" naming the first new segment, fsync it
//   3. commit   rename it to "compaction.commit", fsync the directory   <- the atomic switch
//   4. finish   rename the staged files to "<seq>.log", remove the segments below the
//               first new one, remove the marker, fsync the directory after each phase
//
// On open, a marker means the compaction committed: step 4 is run again (each of
// its moves is idempotent). No marker means it did not: staged files and the
// temporary marker are removed and the old segments are the log.
import { readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "./crc32.ts";
import { errorCode, errorDetail, LogRecoveryError, LogWriteError, RecordTooLargeError } from "./durable-log-errors.ts";
import {
  COMPACTION_MARKER,
  COMPACTION_MARKER_TEMP,
  listLogDirectory,
  segmentName,
  stagedSegmentName,
} from "./log-directory.ts";
import { frameBytes, writeRecord } from "./log-record.ts";
import { type OpenSegment, type SegmentFile, syncDirectory } from "./segment-file.ts";

/** Where a compaction works and how it reports its durable steps (a test seam). */
export interface CompactionContext {
  readonly dir: string;
  readonly openSegment: OpenSegment;
  readonly segmentBytes: number;
  readonly maxRecordBytes: number;
  readonly step: (name: string) => Promise<void>;
}

/** A segment written by a compaction, with its size in bytes. */
export interface WrittenSegment {
  readonly seq: number;
  readonly bytes: number;
}

const CHUNK_BYTES = 1 << 20;

const wrapWrite = async <T>(operation: LogWriteError["operation"], path: string, run: () => Promise<T>): Promise<T> => {
  try {
    return await run();
  } catch (cause) {
    throw new LogWriteError({ segment: path, operation, code: errorCode(cause), detail: errorDetail(cause) });
  }
};

const MARKER_LINE = (first: number, last: number): string =>
  `celerity durable log compaction: first segment ${segmentName(first)}, last segment ${segmentName(last)}`;
const hex8 = (n: number): string => n.toString(16).padStart(8, "0");
const MARKER_TEXT = (first: number, last: number): string => {
  const line = MARKER_LINE(first, last);
  return `${line}, crc32 ${hex8(crc32(new TextEncoder().encode(line)))}\n`;
};
const MARKER_PATTERN =
  /^(celerity durable log compaction: first segment (\d{16})\.log, last segment (\d{16})\.log), crc32 ([0-9a-f]{8})\n$/;

/** The segments a committed compaction wrote, read from its marker; undefined when the marker is not intact. */
const readMarker = (text: string): { first: number; last: number } | undefined => {
  const match = MARKER_PATTERN.exec(text);
  if (!match) return undefined;
  if (hex8(crc32(new TextEncoder().encode(match[1]))) !== match[4]) return undefined;
  const first = Number(match[2]);
  const last = Number(match[3]);
  return last >= first ? { first, last } : undefined;
};

/** The marker of the release before checksummed markers: the first compacted segment only. */
const OLD_MARKER_PATTERN = /^celerity durable log compaction: first segment (\d{16})\.log\n$/;

/**
 * The first segment an old-format marker names, when the directory confirms
 * it: that marker has no checksum, so a flipped digit would pass, and
 * finishing removes every segment below the one it names. It is trusted only
 * where the file names alone say the same: no staged segment renamed yet (the
 * staged ones start right at it, every final one is below it), or every one
 * renamed and every older one removed (the first segment is it). Otherwise
 * the reason it cannot be confirmed.
 */
const confirmOldMarker = (
  text: string,
  listing: { readonly segments: readonly number[]; readonly staged: readonly number[] },
): { first: number } | { reason: string } | undefined => {
  const match = OLD_MARKER_PATTERN.exec(text);
  if (!match) return undefined;
  const first = Number(match[1]);
  const { segments, staged } = listing;
  const contiguous = staged.every((seq, i) => seq === staged[0] + i);
  if (staged.length > 0 && staged[0] === first && contiguous && segments.every((seq) => seq < first)) return { first };
  if (staged.length === 0 && segments[0] === first) return { first };
  const found = (names: readonly number[], form: string) =>
    names.length === 0 ? `no ${form} segments` : `${form} ${names.map(segmentName).join(", ")}`;
  return {
    reason: `the compaction marker ${COMPACTION_MARKER} is in the previous release's format, naming ${segmentName(first)} as the first compacted segment without a checksum, and the segments here (${found(segments, "final")}; ${found(staged, "staged")}) do not confirm it: finishing would remove every segment below it; nothing was changed`,
  };
};

/**
 * Step 1: write `live` into staged segments numbered from `base`, each fsynced,
 * then fsync the directory. Returns the segments written (at least one, maybe
 * empty, so the log always has a segment to append to).
 *
 * @example
 * const written = await stageCompaction(context, lastSeq + 1, liveRecords);
 */
export const stageCompaction = async (
  context: CompactionContext,
  base: number,
  live: Iterable<Uint8Array>,
): Promise<WrittenSegment[]> => {
  const { dir, openSegment, segmentBytes, maxRecordBytes } = context;
  const written: WrittenSegment[] = [];
  let seq = base;
  let path = "";
  let file: SegmentFile | undefined;
  let bytes = 0;
  let chunk = new Uint8Array(CHUNK_BYTES);
  let filled = 0;
  const startSegment = async (): Promise<void> => {
    path = join(dir, stagedSegmentName(seq));
    const opened = await wrapWrite("open", path, () => openSegment(path));
    file = opened;
    // A staged file left by an earlier failed compaction must not keep its old tail.
    await wrapWrite("truncate", path, () => opened.truncate(0));
    bytes = 0;
  };
  const flushChunk = async (): Promise<void> => {
    if (filled === 0) return;
    const at = bytes - filled;
    const data = chunk.subarray(0, filled);
    const target = file as SegmentFile;
    await wrapWrite("write", path, () => target.write(data, at));
    filled = 0;
  };
  const sealSegment = async (): Promise<void> => {
    await flushChunk();
    const target = file as SegmentFile;
    await wrapWrite("fsync", path, () => target.datasync());
    file = undefined;
    await wrapWrite("close", path, () => target.close());
    written.push({ seq, bytes });
    await context.step(`staged ${stagedSegmentName(seq)}`);
  };
  try {
    await startSegment();
    for (const record of live) {
      if (record.length > maxRecordBytes) throw new RecordTooLargeError({ size: record.length, max: maxRecordBytes });
      const size = frameBytes(record.length);
      if (bytes > 0 && bytes + size > segmentBytes) {
        await sealSegment();
        seq += 1;
        await startSegment();
      }
      if (filled + size > chunk.length) {
        await flushChunk();
        if (size > chunk.length) chunk = new Uint8Array(size);
      }
      writeRecord(chunk, filled, record);
      filled += size;
      bytes += size;
    }
    await sealSegment();
  } catch (error) {
    await file?.close().catch(() => undefined);
    throw error;
  }
  await wrapWrite("fsync", dir, () => syncDirectory(dir));
  return written;
};

/**
 * Step 2: write and fsync the temporary marker naming `base` as the first
 * segment of the compacted log. Nothing is committed yet.
 *
 * @example
 * await prepareCompaction(context, base, written.at(-1)!.seq);
 */
export const prepareCompaction = async (context: CompactionContext, base: number, last: number): Promise<void> => {
  const path = join(context.dir, COMPACTION_MARKER_TEMP);
  const file = await wrapWrite("open", path, () => context.openSegment(path));
  try {
    await wrapWrite("truncate", path, () => file.truncate(0));
    await wrapWrite("write", path, () => file.write(new TextEncoder().encode(MARKER_TEXT(base, last)), 0));
    await wrapWrite("fsync", path, () => file.datasync());
  } finally {
    await file.close().catch(() => undefined);
  }
  await context.step("marker prepared");
};

/**
 * Step 3, the commit: after this resolves, every later open sees the compacted
 * log. If it rejects, the compaction may or may not have committed.
 *
 * @example
 * await commitCompaction(context);
 */
export const commitCompaction = async (context: CompactionContext): Promise<void> => {
  const { dir } = context;
  const marker = join(dir, COMPACTION_MARKER);
  await wrapWrite("rename", marker, () => rename(join(dir, COMPACTION_MARKER_TEMP), marker));
  await wrapWrite("fsync", dir, () => syncDirectory(dir));
  await context.step("committed");
};

const removeIfPresent = async (path: string): Promise<boolean> => {
  try {
    await unlink(path);
    return true;
  } catch (cause) {
    if (errorCode(cause) === "ENOENT") return false;
    throw new LogWriteError({ segment: path, operation: "remove", code: errorCode(cause), detail: errorDetail(cause) });
  }
};

/**
 * Step 4: after the commit, put the staged segments in place, remove the old
 * segments (those below `base`) and then the marker. Safe to run again after
 * a crash part-way through.
 *
 * @example
 * await finishCompaction(dir, base, async () => {});
 */
export const finishCompaction = async (
  dir: string,
  base: number,
  step: (name: string) => Promise<void>,
): Promise<void> => {
  const listing = await listLogDirectory(dir);
  for (const seq of listing.staged) {
    const to = join(dir, segmentName(seq));
    await wrapWrite("rename", to, () => rename(join(dir, stagedSegmentName(seq)), to));
    await step(`renamed ${segmentName(seq)}`);
  }
  await wrapWrite("fsync", dir, () => syncDirectory(dir));
  for (const seq of listing.segments) {
    if (seq >= base) continue;
    await removeIfPresent(join(dir, segmentName(seq)));
    await step(`removed ${segmentName(seq)}`);
  }
  await wrapWrite("fsync", dir, () => syncDirectory(dir));
  await removeIfPresent(join(dir, COMPACTION_MARKER));
  await wrapWrite("fsync", dir, () => syncDirectory(dir));
  await step("marker removed");
};

/**
 * Remove what an uncommitted compaction left (staged segments, the temporary
 * marker), so the old segments stay the log. Best effort on a failed compaction;
 * on open its errors propagate.
 *
 * @example
 * await abandonCompaction(dir);
 */
export const abandonCompaction = async (dir: string): Promise<void> => {
  const listing = await listLogDirectory(dir);
  let removed = false;
  for (const seq of listing.staged) removed = (await removeIfPresent(join(dir, stagedSegmentName(seq)))) || removed;
  if (listing.markerTemp) removed = (await removeIfPresent(join(dir, COMPACTION_MARKER_TEMP))) || removed;
  if (removed) await wrapWrite("fsync", dir, () => syncDirectory(dir));
};

/**
 * On open, bring the directory to one whole log: finish a committed compaction,
 * or undo an uncommitted one.
 *
 * @example
 * await settleCompaction(dir); // then list and scan the segments
 */
export const settleCompaction = async (dir: string): Promise<void> => {
  const listing = await listLogDirectory(dir);
  if (!listing.marker) {
    await abandonCompaction(dir);
    return;
  }
  let text: string;
  try {
    text = await readFile(join(dir, COMPACTION_MARKER), "utf8");
  } catch (cause) {
    throw new LogRecoveryError({
      dir,
      reason: `cannot read the compaction marker: ${errorCode(cause)} (${errorDetail(cause)})`,
    });
  }
  const old = confirmOldMarker(text, listing);
  if (old !== undefined && "reason" in old) throw new LogRecoveryError({ dir, reason: old.reason });
  if (old !== undefined) {
    await finishCompaction(dir, old.first, async () => {});
    return;
  }
  const marker = readMarker(text);
  if (marker === undefined) {
    throw new LogRecoveryError({
      dir,
      reason: `the compaction marker ${COMPACTION_MARKER} is damaged (${JSON.stringify(text.slice(0, 120))}), so it is unknown whether the last compaction committed or which segments it replaced; nothing was changed`,
    });
  }
  // Finishing removes every segment before the compacted ones: only when all of those are here.
  const present = new Set([...listing.staged, ...listing.segments]);
  for (let seq = marker.first; seq <= marker.last; seq++) {
    if (!present.has(seq)) {
      throw new LogRecoveryError({
        dir,
        reason: `the committed compaction wrote ${segmentName(marker.first)} to ${segmentName(marker.last)}, but ${segmentName(seq)} is in neither its staged nor its final form; finishing would remove the older segments, so nothing was changed`,
      });
    }
  }
  await finishCompaction(dir, marker.first, async () => {});
};
