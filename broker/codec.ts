// The strict msgpack codec for message bodies and results: one encoder and decoder,
// reused, that refuse any value which would not come back unchanged.
import { Decoder, Encoder, ExtensionCodec } from "@msgpack/msgpack";
import { Data } from "effect";
import { MsgpackReader } from "./msgpack/msgpack-reader.ts";
import { MsgpackWriter } from "./msgpack/msgpack-writer.ts";

/**
 * msgpack codec for message bodies and results. It accepts exactly the values
 * that survive a round trip unchanged: null, undefined, booleans, numbers,
 * strings, Uint8Array, Date, arrays and plain objects of those (-0 arrives as 0,
 * a Buffer as a plain Uint8Array). Anything else
 * (functions, symbols, bigint, Map, Set, class instances, cycles, invalid
 * Dates, `__proto__` or symbol keys, strings with lone surrogates) is rejected
 * with a CodecError that names where the value sits.
 *
 * @example
 * const codec = new Codec();
 * codec.decode(codec.encode({ xs: [1, 2, undefined] })); // { xs: [1, 2, undefined] }
 */
export class CodecError extends Data.TaggedError("CodecError")<{
  readonly path: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `cannot serialize ${this.path}: ${this.reason}`;
  }
}

/**
 * Bytes that are not a valid encoded value (truncated, corrupted, or not msgpack).
 *
 * @example
 * new Codec().decode(new Uint8Array([0xc1])); // throws DecodeError
 */
export class DecodeError extends Data.TaggedError("DecodeError")<{
  readonly size: number;
  readonly reason: string;
}> {
  override get message(): string {
    return `malformed message body (${this.size} bytes): ${this.reason}`;
  }
}

const UNDEFINED_EXT = 0;

/** Stands in for `undefined` inside arrays and objects, where msgpack would otherwise turn it into null. */
class UndefinedMarker {}
const undefinedMarker = new UndefinedMarker();

const extensionCodec = new ExtensionCodec();
extensionCodec.register({
  type: UNDEFINED_EXT,
  encode: (value) => (value instanceof UndefinedMarker ? new Uint8Array(0) : null),
  decode: () => undefined,
});

const MAX_DEPTH = 100;

const describe = (value: unknown): string => {
  if (typeof value === "function") return "a function cannot be sent";
  if (typeof value === "symbol") return "a symbol cannot be sent";
  if (typeof value === "bigint") return "a bigint cannot be sent (pass it as a string)";
  const name = (value as object)?.constructor?.name ?? "object";
  return `a ${name} instance cannot be sent (use plain objects, arrays, strings, numbers, booleans, null, Date or Uint8Array)`;
};

/**
 * Where the value being checked sits, as keys from the root. Kept as a stack
 * and turned into a string ("args[1].when") only for an error: building a path
 * string per element was most of the codec's allocation.
 */
const pathStack: (string | number)[] = [];

const LONE_SURROGATE = "a lone surrogate (not well-formed UTF-16) cannot be sent";
/** UTF-8 cannot carry a lone surrogate; msgpack would silently replace it with U+FFFD. */
const isWellFormed = (text: string): boolean => (text as string & { isWellFormed(): boolean }).isWellFormed();
/** The objects on the way from the root to the value being checked; reused across calls (encoding is synchronous). */
const visiting = new Set<object>();

const pathOf = (root: string): string => {
  let path = root;
  for (const key of pathStack) path += typeof key === "number" ? `[${key}]` : `.${key}`;
  return path;
};

const fail = (root: string, reason: string): never => {
  throw new CodecError({ path: pathOf(root), reason });
};

/**
 * Checks that `value` can be encoded, and returns it with `undefined`s nested
 * in arrays and objects swapped for a marker. Returns the input itself (no copy)
 * when nothing needs swapping, which is the common case.
 */
const prepare = (value: unknown, root: string, depth: number): unknown => {
  switch (typeof value) {
    case "string":
      return isWellFormed(value) ? value : fail(root, LONE_SURROGATE);
    case "number":
    case "boolean":
    case "undefined":
      return value;
    case "object":
      break;
    default:
      return fail(root, describe(value));
  }
  if (value === null || value instanceof Uint8Array) return value;
  if (value instanceof Date)
    return Number.isNaN(value.getTime()) ? fail(root, "an invalid Date cannot be sent") : value;
  if (depth > MAX_DEPTH) fail(root, `nested deeper than ${MAX_DEPTH} levels`);
  if (visiting.has(value)) fail(root, "circular reference");
  visiting.add(value);
  try {
    if (Array.isArray(value)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item = value[i];
        let prepared: unknown = undefinedMarker;
        if (item !== undefined) {
          pathStack.push(i);
          prepared = prepare(item, root, depth + 1);
          pathStack.pop();
        }
        if (prepared !== item && out === undefined) out = value.slice(0, i);
        if (out !== undefined) out.push(prepared);
      }
      return out ?? value;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) fail(root, describe(value));
    if (Object.getOwnPropertySymbols(value).length > 0) fail(root, "a property keyed by a symbol cannot be sent");
    let out: Record<string, unknown> | undefined;
    const record = value as Record<string, unknown>;
    for (const key in record) {
      if (key === "__proto__") fail(root, "a key named __proto__ cannot be sent");
      if (!isWellFormed(key)) fail(root, `a key with ${LONE_SURROGATE}`);
      const item = record[key];
      let prepared: unknown = undefinedMarker;
      if (item !== undefined) {
        pathStack.push(key);
        prepared = prepare(item, root, depth + 1);
        pathStack.pop();
      }
      if (prepared !== item && out === undefined) out = { ...record };
      if (out !== undefined) out[key] = prepared;
    }
    return out ?? value;
  } finally {
    visiting.delete(value);
  }
};

// msgpack's own depth limit sits above ours, so ours (with a path) is the one users meet.
const libraryEncoder = new Encoder({ extensionCodec, maxDepth: MAX_DEPTH + 10 });

/**
 * The strict codec's encoding done the long way: every value checked with the path
 * to it kept, then written by the library. It gives the same bytes as the hand-written
 * writer for the values that writer takes, and the one CodecError users meet for the
 * values nobody may send.
 *
 * @example
 * encodeThroughLibrary({ at: new Date(0) }, "value"); // the bytes Codec.encode gives
 */
export const encodeThroughLibrary = (value: unknown, path: string): Uint8Array => {
  pathStack.length = 0;
  visiting.clear();
  const prepared = value === undefined ? undefinedMarker : prepare(value, path, 0);
  return libraryEncoder.encode(prepared);
};

/**
 * The strict msgpack codec (see CodecError for the values it accepts): plain
 * values are written and read by hand (msgpack/), anything else (a Date, a
 * non-ASCII string, a value that must be refused) goes through the library with
 * every check; both give the same bytes.
 *
 * @example
 * const codec = new Codec();
 * codec.decode(codec.encode({ at: new Date(0), bytes: new Uint8Array([1]) })); // the same value back
 */
export class Codec {
  private readonly writer = new MsgpackWriter("extension");
  private readonly reader = new MsgpackReader(new Decoder({ extensionCodec }), true);

  /** Encode `value`; `path` names it in errors (e.g. "args of add"). Throws CodecError. */
  encode(value: unknown, path = "value"): Uint8Array {
    return this.writer.writeShared(value)?.slice() ?? encodeThroughLibrary(value, path);
  }

  /** Decode bytes produced by `encode`. Throws DecodeError on malformed input. */
  decode(bytes: Uint8Array): unknown {
    try {
      return this.reader.decode(bytes);
    } catch (cause) {
      throw new DecodeError({ size: bytes.byteLength, reason: cause instanceof Error ? cause.message : String(cause) });
    }
  }
}
