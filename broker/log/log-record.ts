// On-disk framing of one log record, and scanning a segment's bytes back into records
// and damaged stretches. A record is a 12-byte header then the payload:
//
//   0      magic 0xCE (a zero-filled or foreign tail fails here)
//   1      format version (1)
//   2..3   reserved, written as 0
//   4..7   payload length, u32 little-endian
//   8..11  CRC-32 of bytes 0..7 followed by the payload, u32 little-endian
//
// The checksum covers the header fields as well as the payload, so a flipped bit in the
// length cannot make a shorter or longer slice of the file pass as a record.
import { crc32 } from "./crc32.ts";

/**
 * Bytes of a record's header, in front of its payload.
 *
 * @example
 * const frame = new Uint8Array(RECORD_HEADER_BYTES + payload.length);
 * writeRecord(frame, 0, payload);
 * scanRecords(frame, 1 << 24).records; // [payload]
 */
export const RECORD_HEADER_BYTES = 12;

const MAGIC = 0xce;
const VERSION = 1;

/** Bytes a record with a `payloadBytes`-byte payload takes on disk. */
export const frameBytes = (payloadBytes: number): number => RECORD_HEADER_BYTES + payloadBytes;

/**
 * Frame `payload` into `target` at `offset` and return the offset just past it.
 * `target` must have `frameBytes(payload.length)` bytes free there.
 *
 * @example
 * let at = 0;
 * for (const p of payloads) at = writeRecord(batch, at, p);
 */
export const writeRecord = (target: Uint8Array, offset: number, payload: Uint8Array): number => {
  const n = payload.length;
  target[offset] = MAGIC;
  target[offset + 1] = VERSION;
  target[offset + 2] = 0;
  target[offset + 3] = 0;
  target[offset + 4] = n & 0xff;
  target[offset + 5] = (n >>> 8) & 0xff;
  target[offset + 6] = (n >>> 16) & 0xff;
  target[offset + 7] = (n >>> 24) & 0xff;
  const sum = crc32(payload, crc32(target.subarray(offset, offset + 8)));
  target[offset + 8] = sum & 0xff;
  target[offset + 9] = (sum >>> 8) & 0xff;
  target[offset + 10] = (sum >>> 16) & 0xff;
  target[offset + 11] = (sum >>> 24) & 0xff;
  target.set(payload, offset + RECORD_HEADER_BYTES);
  return offset + RECORD_HEADER_BYTES + n;
};

/** Where and why a scan stopped before the end of its bytes. */
export interface RecordDamage {
  readonly offset: number;
  readonly reason: string;
}

/**
 * The intact records at the start of `bytes`, read up to the first record that
 * is torn or damaged. `end` is where the intact part stops (the length of
 * `bytes` when nothing is wrong); `damage` says what was found there. Records
 * are views into `bytes`, not copies.
 *
 * @example
 * const { records, end, damage } = scanRecords(await readFile(segment), maxRecordBytes);
 * if (damage) await truncate(segment, end);
 */
export interface ScanResult {
  readonly records: Uint8Array[];
  readonly end: number;
  readonly damage?: RecordDamage;
}

const u32 = (b: Uint8Array, at: number): number =>
  (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;

/**
 * Read the records framed by `writeRecord` from the start of `bytes`, stopping
 * at the first one whose header is incomplete or foreign, whose length exceeds
 * `maxRecordBytes` or the bytes left, or whose checksum does not match.
 *
 * @example
 * scanRecords(segmentBytes, 16 * 1024 * 1024).records.length; // records that survived
 */
export const scanRecords = (bytes: Uint8Array, maxRecordBytes: number): ScanResult => {
  const records: Uint8Array[] = [];
  let at = 0;
  const stop = (reason: string): ScanResult => ({ records, end: at, damage: { offset: at, reason } });
  while (at < bytes.length) {
    const left = bytes.length - at;
    if (left < RECORD_HEADER_BYTES) return stop(`incomplete header (${left} of ${RECORD_HEADER_BYTES} bytes)`);
    if (bytes[at] !== MAGIC) return stop(`bad magic byte 0x${bytes[at].toString(16).padStart(2, "0")}`);
    if (bytes[at + 1] !== VERSION) return stop(`unsupported format version ${bytes[at + 1]}`);
    const length = u32(bytes, at + 4);
    if (length > maxRecordBytes) return stop(`record length ${length} exceeds the ${maxRecordBytes}-byte maximum`);
    if (length > left - RECORD_HEADER_BYTES) {
      return stop(`record length ${length} runs past the end of the file (${left - RECORD_HEADER_BYTES} bytes left)`);
    }
    const start = at + RECORD_HEADER_BYTES;
    const payload = bytes.subarray(start, start + length);
    const expected = u32(bytes, at + 8);
    const actual = crc32(payload, crc32(bytes.subarray(at, at + 8)));
    if (actual !== expected) return stop("checksum mismatch");
    records.push(new Uint8Array(payload.buffer, payload.byteOffset, length));
    at = start + length;
  }
  return { records, end: at };
};

/** A stretch of bytes that holds no intact record, with an intact record after it (damage in the middle of a log). */
export interface DamagedRegion {
  readonly offset: number;
  readonly length: number;
  readonly reason: string;
}

/**
 * Every intact record of a segment, resynchronising past damage. Where a
 * record is damaged, the scan looks for the next offset at which an intact
 * record starts (magic, version, a plausible length and a matching
 * checksum): the bytes in between are a damaged region, and the records
 * after it are kept. Damage with no intact record behind it is a torn tail:
 * `end` is where it starts (the bytes to keep), `torn` says why.
 *
 * @example
 * const { records, damaged, end, torn } = scanSegment(bytes, maxRecordBytes);
 * // damaged: regions to quarantine; torn: a tail to cut at `end`
 */
export interface SegmentScan {
  readonly records: Uint8Array[];
  readonly damaged: readonly DamagedRegion[];
  readonly end: number;
  readonly torn?: RecordDamage;
}

/** Whether an intact record starts at `at`; its end offset if so, else -1. */
const intactRecordAt = (bytes: Uint8Array, at: number, maxRecordBytes: number): number => {
  if (bytes.length - at < RECORD_HEADER_BYTES || bytes[at] !== MAGIC || bytes[at + 1] !== VERSION) return -1;
  const length = u32(bytes, at + 4);
  if (length > maxRecordBytes || length > bytes.length - at - RECORD_HEADER_BYTES) return -1;
  const start = at + RECORD_HEADER_BYTES;
  return crc32(bytes.subarray(start, start + length), crc32(bytes.subarray(at, at + 8))) === u32(bytes, at + 8)
    ? start + length
    : -1;
};

export const scanSegment = (bytes: Uint8Array, maxRecordBytes: number): SegmentScan => {
  const records: Uint8Array[] = [];
  const damaged: DamagedRegion[] = [];
  let at = 0;
  for (;;) {
    const scan = scanRecords(at === 0 ? bytes : bytes.subarray(at), maxRecordBytes);
    for (const record of scan.records) records.push(record);
    if (scan.damage === undefined) return { records, damaged, end: bytes.length };
    const from = at + scan.damage.offset;
    let next = -1;
    for (
      let candidate = bytes.indexOf(MAGIC, from + 1);
      candidate !== -1;
      candidate = bytes.indexOf(MAGIC, candidate + 1)
    ) {
      if (intactRecordAt(bytes, candidate, maxRecordBytes) !== -1) {
        next = candidate;
        break;
      }
    }
    if (next === -1) return { records, damaged, end: from, torn: { offset: from, reason: scan.damage.reason } };
    damaged.push({ offset: from, length: next - from, reason: scan.damage.reason });
    at = next;
  }
};
