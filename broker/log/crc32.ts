// CRC-32 for the log's record checksums: node's zlib.crc32 where the runtime has it, a
// table-driven one in JavaScript where it does not, both giving the same value.
import * as zlib from "node:zlib";

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial) computed in JavaScript with a
 * 256-entry table. `initial` continues a checksum over data split in parts.
 * Used where the runtime has no native `zlib.crc32` (Node before 20.15).
 *
 * @example
 * portableCrc32(new TextEncoder().encode("123456789")); // 0xcbf43926
 * portableCrc32(b, portableCrc32(a)) === portableCrc32(concat(a, b)); // true
 */
export const portableCrc32 = (data: Uint8Array, initial = 0): number => {
  let c = ~initial;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
};

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/**
 * CRC-32 (IEEE) of `data`, continuing from `initial` when the data comes in
 * parts: the native `zlib.crc32` when the runtime has it, else the table-driven
 * `portableCrc32`; both give the same value.
 *
 * @example
 * crc32(new TextEncoder().encode("123456789")); // 0xcbf43926
 */
export const crc32: (data: Uint8Array, initial?: number) => number =
  native === undefined ? portableCrc32 : (data, initial = 0) => native(data, initial);
