// The names of the files in a log directory (segments, staged segments, the compaction
// marker) and reading which of them are there.
import { readdir } from "node:fs/promises";

const DIGITS = 16;
const SEGMENT = /^(\d{16})\.log$/;
const STAGED = /^(\d{16})\.log\.compact$/;

/** File name of the compaction marker: present only between the commit and the end of a compaction. */
export const COMPACTION_MARKER = "compaction.commit";
/** The marker while it is being written, before the rename that commits a compaction. */
export const COMPACTION_MARKER_TEMP = "compaction.commit.tmp";

/**
 * File name of segment `seq`: zero-padded so names sort in append order.
 *
 * @example
 * segmentName(3); // "0000000000000003.log"
 */
export const segmentName = (seq: number): string => `${String(seq).padStart(DIGITS, "0")}.log`;

/**
 * Name of segment `seq` while a compaction writes it, before the commit.
 *
 * @example
 * stagedSegmentName(7); // "0000000000000007.log.compact"
 */
export const stagedSegmentName = (seq: number): string => `${segmentName(seq)}.compact`;

/**
 * What a log directory holds: its segments by sequence number (ascending),
 * segments staged by an unfinished compaction, and whether the compaction
 * marker (or its temporary) is there. Unknown files are left out.
 *
 * @example
 * const { segments } = await listLogDirectory(dir);
 * segments.at(-1); // the segment appends go to
 */
export interface LogDirectory {
  readonly segments: readonly number[];
  readonly staged: readonly number[];
  readonly marker: boolean;
  readonly markerTemp: boolean;
}

/**
 * Read a log directory's listing.
 *
 * @example
 * const listing = await listLogDirectory("/var/lib/celerity/log");
 */
export const listLogDirectory = async (dir: string): Promise<LogDirectory> => {
  const segments: number[] = [];
  const staged: number[] = [];
  let marker = false;
  let markerTemp = false;
  for (const name of await readdir(dir)) {
    const segment = SEGMENT.exec(name);
    const stage = STAGED.exec(name);
    if (segment) segments.push(Number(segment[1]));
    else if (stage) staged.push(Number(stage[1]));
    else if (name === COMPACTION_MARKER) marker = true;
    else if (name === COMPACTION_MARKER_TEMP) markerTemp = true;
  }
  const ascending = (a: number, b: number): number => a - b;
  return { segments: segments.sort(ascending), staged: staged.sort(ascending), marker, markerTemp };
};
