// msgpack read by hand for what messages and frames mostly hold: small arrays and maps,
// short ASCII strings that repeat from one to the next (operation names, queue and task
// names, header keys, consumer tags), integers, binaries. Anything else (extension types
// other than the strict codec's undefined, non-ASCII strings, keys that are not strings, a
// payload that is cut short or malformed) is handed to an @msgpack/msgpack Decoder, whose
// answer or error is the one given: the result is the library's, only reached faster,
// except that a binary is always a plain Uint8Array view of the payload (the library gives
// a Buffer's subarray for a Buffer).
import type { Decoder } from "@msgpack/msgpack";

/** Thrown inside the decoder to hand the payload to the library. */
const ELSEWHERE = Symbol("decoded elsewhere");

/** Strings up to this many bytes are kept to be reused when the same bytes come again. */
const CACHED_MAX_BYTES = 16;
/** Strings kept per length; a new one replaces them in turn. */
const CACHED_PER_LENGTH = 16;
/** Longer strings are decoded natively; shorter ones are built in JavaScript, which is faster for them. */
const BUILT_MAX_BYTES = 64;
/** Nesting deeper than this goes to the library (which has no recursion to run out of). */
const MAX_DEPTH = 64;

interface CachedString {
  readonly bytes: Uint8Array;
  readonly value: string;
}

/**
 * Decodes msgpack as its `library` decoder would, with the same result for every
 * input; faster for the payloads of messages and frames (see above). With
 * `undefinedExtension`, the empty extension of type 0 reads as `undefined` (as the
 * strict codec's extension codec has it) without going to the library.
 *
 * @example
 * const reader = new MsgpackReader(new Decoder(), false);
 * reader.decode(new Encoder().encode([1, "ack", ["c1", 7]])); // [1, "ack", ["c1", 7]]
 */
export class MsgpackReader {
  private bytes: Uint8Array = new Uint8Array(0);
  private view: DataView | undefined;
  private pos = 0;
  private readonly cache: CachedString[][] = Array.from({ length: CACHED_MAX_BYTES + 1 }, () => []);
  private readonly nextSlot = new Uint8Array(CACHED_MAX_BYTES + 1);
  /** Per string length up to BUILT_MAX_BYTES, the array its char codes are gathered in. */
  private readonly codes: number[][] = [];

  constructor(
    private readonly library: Decoder,
    private readonly undefinedExtension: boolean,
  ) {}

  decode(bytes: Uint8Array): unknown {
    this.bytes = bytes;
    this.view = undefined;
    this.pos = 0;
    try {
      const value = this.read(0);
      if (this.pos === bytes.length) return value;
    } catch (error) {
      if (error !== ELSEWHERE) throw error;
    } finally {
      this.bytes = EMPTY;
      this.view = undefined;
    }
    return this.library.decode(bytes);
  }

  private read(depth: number): unknown {
    const bytes = this.bytes;
    if (this.pos >= bytes.length) throw ELSEWHERE;
    const head = bytes[this.pos++];
    if (head < 0x80) return head;
    if (head >= 0xe0) return head - 0x100;
    if (head < 0x90) return this.readMap(head - 0x80, depth);
    if (head < 0xa0) return this.readArray(head - 0x90, depth);
    if (head < 0xc0) return this.readString(head - 0xa0);
    switch (head) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.readBinary(this.readLength(1));
      case 0xc5:
        return this.readBinary(this.readLength(2));
      case 0xc6:
        return this.readBinary(this.readLength(4));
      case 0xca:
        return this.dataView().getFloat32(this.advance(4));
      case 0xcb:
        return this.dataView().getFloat64(this.advance(8));
      case 0xcc:
        return this.readLength(1);
      case 0xcd:
        return this.readLength(2);
      case 0xce:
        return this.readLength(4);
      case 0xcf: {
        const view = this.dataView();
        const at = this.advance(8);
        return view.getUint32(at) * 4294967296 + view.getUint32(at + 4);
      }
      case 0xd0:
        return this.dataView().getInt8(this.advance(1));
      case 0xd1:
        return this.dataView().getInt16(this.advance(2));
      case 0xd2:
        return this.dataView().getInt32(this.advance(4));
      case 0xd3: {
        const view = this.dataView();
        const at = this.advance(8);
        return view.getInt32(at) * 4294967296 + view.getUint32(at + 4);
      }
      case 0xd9:
        return this.readString(this.readLength(1));
      case 0xda:
        return this.readString(this.readLength(2));
      case 0xdb:
        return this.readString(this.readLength(4));
      case 0xdc:
        return this.readArray(this.readLength(2), depth);
      case 0xdd:
        return this.readArray(this.readLength(4), depth);
      case 0xde:
        return this.readMap(this.readLength(2), depth);
      case 0xdf:
        return this.readMap(this.readLength(4), depth);
      case 0xc7:
        return this.readExtension();
      default:
        throw ELSEWHERE; // extension types, and bytes that are no type
    }
  }

  /** The strict codec's undefined (ext 8 of size 0 and type 0); other extensions are the library's to read. */
  private readExtension(): undefined {
    const bytes = this.bytes;
    const at = this.pos;
    if (!this.undefinedExtension || at + 2 > bytes.length || bytes[at] !== 0 || bytes[at + 1] !== 0) throw ELSEWHERE;
    this.pos = at + 2;
    return undefined;
  }

  /** A big-endian unsigned integer of `size` (1, 2 or 4) bytes. */
  private readLength(size: number): number {
    const bytes = this.bytes;
    const at = this.pos;
    if (at + size > bytes.length) throw ELSEWHERE;
    this.pos = at + size;
    if (size === 1) return bytes[at];
    if (size === 2) return (bytes[at] << 8) | bytes[at + 1];
    return bytes[at] * 0x1000000 + ((bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]);
  }

  private advance(size: number): number {
    const at = this.pos;
    if (at + size > this.bytes.length) throw ELSEWHERE;
    this.pos = at + size;
    return at;
  }

  /** A view of the payload, made on first use (only floats and 64-bit integers need one); `advance` checks the bounds. */
  private dataView(): DataView {
    const bytes = this.bytes;
    this.view ??= new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return this.view;
  }

  private readArray(size: number, depth: number): unknown[] {
    if (depth >= MAX_DEPTH || size > this.bytes.length - this.pos) throw ELSEWHERE;
    const array = new Array<unknown>(size);
    for (let i = 0; i < size; i++) array[i] = this.read(depth + 1);
    return array;
  }

  private readMap(size: number, depth: number): Record<string, unknown> {
    if (depth >= MAX_DEPTH || size * 2 > this.bytes.length - this.pos) throw ELSEWHERE;
    const map: Record<string, unknown> = {};
    for (let i = 0; i < size; i++) {
      const key = this.read(depth + 1);
      if (typeof key !== "string" || key === "__proto__") throw ELSEWHERE;
      map[key] = this.read(depth + 1);
    }
    return map;
  }

  private readBinary(length: number): Uint8Array {
    const at = this.pos;
    if (at + length > this.bytes.length) throw ELSEWHERE;
    this.pos = at + length;
    const bytes = this.bytes;
    // A plain view even of a Buffer: a Buffer's subarray costs several times as much to make.
    return new Uint8Array(bytes.buffer, bytes.byteOffset + at, length);
  }

  private readString(length: number): string {
    const bytes = this.bytes;
    const at = this.pos;
    const end = at + length;
    if (end > bytes.length) throw ELSEWHERE;
    if (length <= CACHED_MAX_BYTES) {
      for (let i = at; i < end; i++) if (bytes[i] >= 0x80) throw ELSEWHERE;
      this.pos = end;
      return length === 0 ? "" : this.cached(at, length);
    }
    if (length > BUILT_MAX_BYTES) {
      for (let i = at; i < end; i++) if (bytes[i] >= 0x80) throw ELSEWHERE;
      this.pos = end;
      return latin1.decode(bytes.subarray(at, end));
    }
    // Built from an array of char codes kept for this length: no view of the payload to allocate.
    const codes = (this.codes[length] ??= new Array<number>(length).fill(0));
    for (let i = 0; i < length; i++) {
      const byte = bytes[at + i];
      if (byte >= 0x80) throw ELSEWHERE;
      codes[i] = byte;
    }
    this.pos = end;
    return String.fromCharCode.apply(null, codes);
  }

  /** The string of the `length` ASCII bytes at `at`, reused if the same bytes came before. */
  private cached(at: number, length: number): string {
    const bytes = this.bytes;
    const kept = this.cache[length];
    search: for (let k = 0; k < kept.length; k++) {
      const candidate = kept[k].bytes;
      for (let i = 0; i < length; i++) if (candidate[i] !== bytes[at + i]) continue search;
      return kept[k].value;
    }
    const copy = bytes.slice(at, at + length);
    const value = String.fromCharCode.apply(null, copy as unknown as number[]);
    const entry = { bytes: copy, value };
    if (kept.length < CACHED_PER_LENGTH) kept.push(entry);
    else {
      kept[this.nextSlot[length]] = entry;
      this.nextSlot[length] = (this.nextSlot[length] + 1) % CACHED_PER_LENGTH;
    }
    return value;
  }
}

const EMPTY = new Uint8Array(0);
/** ASCII is latin1: a native decode for strings too long to build by hand. */
const latin1 = new TextDecoder("latin1");
