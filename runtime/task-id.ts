// New task ids: random (version 4) UUIDs, as `crypto.randomUUID()` makes, but each one a
// single flat string. Node builds a UUID by concatenating its hex pieces, and the tree of
// a score of string pieces that makes stays behind every id the runtime keeps (in result
// records, envelopes, maps): flat ids measured about a tenth faster on the dispatch path,
// and most of what sending events cost came from flattening each id when it was written.
import { randomFillSync } from "node:crypto";

const POOL_IDS = 128;
const pool = Buffer.allocUnsafe(16 * POOL_IDS);
let next = POOL_IDS;
const text = Buffer.allocUnsafe(36);
const HEX = Buffer.from("0123456789abcdef", "latin1");
/** Where each of the 16 bytes goes in the 36 characters (after the dashes). */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
text[8] = text[13] = text[18] = text[23] = 0x2d;

/**
 * A new random (version 4) UUID as one flat string.
 *
 * @example
 * newTaskId(); // "3b241101-e2bb-4255-8caf-4136c566a962"
 */
export const newTaskId = (): string => {
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const base = 16 * next++;
  for (let i = 0; i < 16; i++) {
    let byte = pool[base + i];
    if (i === 6)
      byte = (byte & 0x0f) | 0x40; // version 4
    else if (i === 8) byte = (byte & 0x3f) | 0x80; // variant 10
    text[AT[i]] = HEX[byte >> 4];
    text[AT[i] + 1] = HEX[byte & 0x0f];
  }
  return text.toString("latin1", 0, 36);
};
