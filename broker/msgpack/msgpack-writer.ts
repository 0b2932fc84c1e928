// msgpack written by hand for the values messages and frames carry: nil, booleans, numbers,
// ASCII strings, Uint8Arrays, arrays and plain objects, byte for byte as @msgpack/msgpack's
// Encoder writes them. Anything else (a non-ASCII string, a Date or other extension, a class
// instance, another kind of typed array, a bigint, nesting past the depth limit) makes the
// writer give up on the whole value, and its caller hands it to the library instead.

/** Thrown inside the writer when the value is not one it writes. */
const ELSEWHERE = Symbol("encoded elsewhere");

/** As the library's default: deeper values go to the library (which refuses them with its error). */
const MAX_DEPTH = 100;
const INITIAL_BYTES = 2048;

/**
 * How `undefined` is written:
 * - "nil": as nil, and an object's property holding it is left out (the library's
 *   `ignoreUndefined: true`);
 * - "extension": everywhere as the empty extension of type 0 (the strict codec's
 *   marker, so that `[1, undefined]` comes back as written); and an object with a key
 *   the strict codec refuses (a symbol, or an own `__proto__`) is left to the caller.
 */
export type UndefinedAs = "nil" | "extension";

/**
 * Writes msgpack exactly as the library's Encoder does, faster, for the values it
 * knows; `undefined` for any other value, which the caller encodes by other means.
 *
 * @example
 * const writer = new MsgpackWriter("nil");
 * writer.writeShared([1, "ack", ["c1", 7]]); // the library's bytes, as a view of the writer's buffer
 * writer.writeShared([new Date(0)]); // undefined: the library writes extensions
 */
export class MsgpackWriter {
  private bytes = new Uint8Array(INITIAL_BYTES);
  private view = new DataView(this.bytes.buffer);
  private pos = 0;

  constructor(private readonly undefinedAs: UndefinedAs) {}

  /** The bytes as a view of this writer's buffer, valid until its next call; undefined when the value is not one it writes. */
  writeShared(value: unknown): Uint8Array | undefined {
    this.pos = 0;
    try {
      this.write(value, 1);
    } catch (error) {
      if (error !== ELSEWHERE) throw error;
      return undefined;
    }
    return this.bytes.subarray(0, this.pos);
  }

  private write(value: unknown, depth: number): void {
    if (value === null) return this.byte(0xc0);
    if (value === undefined) return this.undefinedValue();
    switch (typeof value) {
      case "boolean":
        return this.byte(value ? 0xc3 : 0xc2);
      case "number":
        return this.number(value);
      case "string":
        return this.string(value);
      case "object":
        break;
      default:
        throw ELSEWHERE;
    }
    if (depth > MAX_DEPTH) throw ELSEWHERE;
    if (Array.isArray(value)) return this.array(value, depth);
    if (value instanceof Uint8Array) return this.binary(value);
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) throw ELSEWHERE;
    return this.map(value as Record<string, unknown>, depth);
  }

  private number(value: number): void {
    if (!Number.isSafeInteger(value)) {
      this.room(9);
      this.bytes[this.pos] = 0xcb;
      this.view.setFloat64(this.pos + 1, value);
      this.pos += 9;
      return;
    }
    if (value >= 0) {
      if (value < 0x80) return this.byte(value);
      if (value < 0x100) return this.head(0xcc, value, 1);
      if (value < 0x10000) return this.head(0xcd, value, 2);
      if (value < 0x100000000) return this.head(0xce, value, 4);
      this.room(9);
      this.bytes[this.pos] = 0xcf;
      this.view.setUint32(this.pos + 1, value / 4294967296);
      this.view.setUint32(this.pos + 5, value);
      this.pos += 9;
      return;
    }
    if (value >= -0x20) return this.byte(0xe0 | (value + 0x20));
    this.room(9);
    const at = this.pos;
    if (value >= -0x80) {
      this.bytes[at] = 0xd0;
      this.view.setInt8(at + 1, value);
      this.pos += 2;
    } else if (value >= -0x8000) {
      this.bytes[at] = 0xd1;
      this.view.setInt16(at + 1, value);
      this.pos += 3;
    } else if (value >= -0x80000000) {
      this.bytes[at] = 0xd2;
      this.view.setInt32(at + 1, value);
      this.pos += 5;
    } else {
      this.bytes[at] = 0xd3;
      this.view.setUint32(at + 1, Math.floor(value / 4294967296));
      this.view.setUint32(at + 5, value);
      this.pos += 9;
    }
  }

  private string(value: string): void {
    const length = value.length;
    if (length < 32) this.byte(0xa0 + length);
    else if (length < 0x100) this.head(0xd9, length, 1);
    else if (length < 0x10000) this.head(0xda, length, 2);
    else this.head(0xdb, length, 4);
    this.room(length);
    const bytes = this.bytes;
    const at = this.pos;
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) throw ELSEWHERE; // its UTF-8 length differs from its length: the library writes it
      bytes[at + i] = code;
    }
    this.pos = at + length;
  }

  private binary(value: Uint8Array): void {
    const size = value.byteLength;
    if (size < 0x100) this.head(0xc4, size, 1);
    else if (size < 0x10000) this.head(0xc5, size, 2);
    else this.head(0xc6, size, 4);
    this.room(size);
    this.bytes.set(value, this.pos);
    this.pos += size;
  }

  private array(value: readonly unknown[], depth: number): void {
    const size = value.length;
    if (size < 16) this.byte(0x90 + size);
    else if (size < 0x10000) this.head(0xdc, size, 2);
    else this.head(0xdd, size, 4);
    for (let i = 0; i < size; i++) this.write(value[i], depth + 1);
  }

  private map(value: Record<string, unknown>, depth: number): void {
    const keys = Object.keys(value);
    const omitUndefined = this.undefinedAs === "nil";
    let size = keys.length;
    if (omitUndefined) {
      size = 0;
      for (let i = 0; i < keys.length; i++) if (value[keys[i]] !== undefined) size++;
    } else if (Object.getOwnPropertySymbols(value).length > 0) throw ELSEWHERE;
    if (size < 16) this.byte(0x80 + size);
    else if (size < 0x10000) this.head(0xde, size, 2);
    else this.head(0xdf, size, 4);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      const item = value[key];
      if (item === undefined && omitUndefined) continue;
      if (key === "__proto__") throw ELSEWHERE;
      this.string(key);
      this.write(item, depth + 1);
    }
  }

  private undefinedValue(): void {
    if (this.undefinedAs === "nil") return this.byte(0xc0);
    this.room(3);
    this.bytes[this.pos] = 0xc7; // ext 8, size 0, type 0
    this.bytes[this.pos + 1] = 0;
    this.bytes[this.pos + 2] = 0;
    this.pos += 3;
  }

  private byte(value: number): void {
    if (this.pos >= this.bytes.length) this.grow(1);
    this.bytes[this.pos++] = value;
  }

  /** A type byte followed by a big-endian unsigned integer of `size` (1, 2 or 4) bytes. */
  private head(type: number, value: number, size: number): void {
    this.room(1 + size);
    const bytes = this.bytes;
    const at = this.pos;
    bytes[at] = type;
    if (size === 1) bytes[at + 1] = value;
    else if (size === 2) {
      bytes[at + 1] = value >>> 8;
      bytes[at + 2] = value & 0xff;
    } else this.view.setUint32(at + 1, value);
    this.pos = at + 1 + size;
  }

  private room(size: number): void {
    if (this.pos + size > this.bytes.length) this.grow(size);
  }

  private grow(size: number): void {
    const bigger = new Uint8Array(Math.max((this.pos + size) * 2, INITIAL_BYTES));
    bigger.set(this.bytes.subarray(0, this.pos));
    this.bytes = bigger;
    this.view = new DataView(bigger.buffer);
  }
}
