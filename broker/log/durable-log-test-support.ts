// Helpers shared by the durable log's test files.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { type CorruptionReport, DurableLog } from "./durable-log.ts";
import { type OpenSegment, openSegmentFile, type SegmentFile } from "./segment-file.ts";

const roots: string[] = [];
after(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

export const tempDir = async (): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), "celerity-log-"));
  roots.push(dir);
  return dir;
};

export const text = new TextEncoder();
/** Record `i`: its number and a filler of varying length, so frames differ in size. */
export const recordFor = (i: number): Uint8Array => text.encode(`record ${i} ${"x".repeat((i * 37) % 90)}`);
export const recordsUpTo = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => recordFor(i));

export { within } from "../../tests/support/waits.ts";

export const segmentFiles = async (dir: string): Promise<string[]> =>
  (await readdir(dir)).filter((name) => name.endsWith(".log")).sort();

export const reopen = async (dir: string, options = {}) => {
  const corruptions: CorruptionReport[] = [];
  const opened = await DurableLog.open(dir, { ...options, onCorruption: (info) => corruptions.push(info) });
  return { ...opened, corruptions };
};

export interface DiskBehaviour {
  write?: (file: SegmentFile, path: string, data: Uint8Array, position: number) => Promise<void>;
  datasync?: (file: SegmentFile, path: string) => Promise<void>;
}

/** The real disk behind a seam that counts fdatasyncs and can be told to fail. */
export const instrumentedDisk = (behaviour: DiskBehaviour = {}) => {
  const stats = { datasyncs: 0, synced: [] as (() => void)[] };
  const openSegment: OpenSegment = async (path) => {
    const file = await openSegmentFile(path);
    return {
      write: (data, position) =>
        behaviour.write ? behaviour.write(file, path, data, position) : file.write(data, position),
      datasync: async () => {
        stats.datasyncs += 1;
        try {
          await (behaviour.datasync ? behaviour.datasync(file, path) : file.datasync());
        } finally {
          for (const wake of stats.synced.splice(0)) wake();
        }
      },
      truncate: (length) => file.truncate(length),
      close: () => file.close(),
    };
  };
  const nextSync = (): Promise<void> => new Promise((resolve) => stats.synced.push(resolve));
  return { openSegment, stats, nextSync };
};

export const osError = (code: string, detail: string): Error =>
  Object.assign(new Error(`${code}: ${detail}`), { code });

/**
 * A disk that loses, at a power cut, every write not yet covered by an
 * fsync: writes wait in memory and reach the file only on `datasync`.
 * After `cut()` nothing more reaches the disk, as when the machine stops.
 */
export const powerCutDisk = () => {
  let powered = true;
  const openSegment: OpenSegment = async (path) => {
    const file = await openSegmentFile(path);
    let unsynced: { data: Uint8Array; position: number }[] = [];
    return {
      write: async (data, position) => {
        if (powered) unsynced.push({ data: data.slice(), position });
      },
      datasync: async () => {
        if (!powered) return;
        for (const { data, position } of unsynced) await file.write(data, position);
        unsynced = [];
        await file.datasync();
      },
      truncate: (length) => (powered ? file.truncate(length) : Promise.resolve()),
      close: () => file.close(),
    };
  };
  return { openSegment, cut: () => (powered = false) };
};
