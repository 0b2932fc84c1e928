// How a task message's body is written on celerity's own protocol: msgpack
// (the default: it carries Date, Uint8Array and undefined) or JSON (readable
// by any language and by eye), optionally gzipped above a size. A body says
// which it is by its first bytes (gzip's magic 1f 8b; JSON's `[`; msgpack's
// array marker otherwise: a body is always an array, so these never collide),
// so every worker reads every app's bodies whatever the app chose.
import { gunzipSync, gzipSync } from "node:zlib";
import { Codec, CodecError } from "../broker/codec.ts";

/**
 * The body options of an app (`createApp({ serializer, compressAbove })`).
 *
 * @example
 * createApp({ serializer: "json", compressAbove: 16 * 1024 }); // JSON bodies, gzipped when over 16 KiB
 */
export interface BodyFormatOptions {
  /** `"msgpack"` (default) or `"json"`: JSON takes only null, booleans, finite numbers, strings, arrays and plain objects. */
  readonly serializer?: "msgpack" | "json";
  /** Gzip a body larger than this many bytes (after serializing). Default: never compress. */
  readonly compressAbove?: number;
}

const GZIP_0 = 0x1f;
const GZIP_1 = 0x8b;
const JSON_ARRAY = 0x5b; // "["
/** The most a compressed body may inflate to: a bound against a small message that would fill memory. */
const MAX_INFLATED = 64 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Throws the CodecError naming the first value JSON cannot carry as it is. */
const checkJson = (value: unknown, path: string, depth: number): void => {
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isFinite(value))
      throw new CodecError({ path, reason: `${value} cannot be sent as JSON (use the msgpack serializer)` });
    return;
  }
  if (value === undefined)
    throw new CodecError({ path, reason: "undefined cannot be sent as JSON (use null, or the msgpack serializer)" });
  if (typeof value !== "object") throw new CodecError({ path, reason: `a ${typeof value} cannot be sent` });
  if (depth > 64) throw new CodecError({ path, reason: "nested deeper than 64 levels" });
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkJson(value[i], `${path}[${i}]`, depth + 1);
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const name = (value as object).constructor?.name ?? "object";
    throw new CodecError({
      path,
      reason: `a ${name} cannot be sent as JSON (send plain data, e.g. a Date's ISO string, or use the msgpack serializer)`,
    });
  }
  for (const key in value as Record<string, unknown>)
    checkJson((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
};

/** Writes and reads task bodies in an app's chosen format; reads any format. */
export class BodyFormat {
  private readonly json: boolean;
  private readonly compressAbove: number;

  constructor(options: BodyFormatOptions = {}) {
    if (options.serializer !== undefined && options.serializer !== "msgpack" && options.serializer !== "json") {
      throw new CodecError({
        path: "serializer",
        reason: `${JSON.stringify(options.serializer)} is not a serializer; use "msgpack" or "json"`,
      });
    }
    if (
      options.compressAbove !== undefined &&
      !(Number.isInteger(options.compressAbove) && options.compressAbove >= 0)
    ) {
      throw new CodecError({ path: "compressAbove", reason: "must be a whole number of bytes, 0 or more" });
    }
    this.json = options.serializer === "json";
    this.compressAbove = options.compressAbove ?? Infinity;
  }

  /** Encode a body (an array); `path` names it in errors. Throws CodecError. */
  encode(codec: Codec, body: readonly unknown[], path: string): Uint8Array {
    let bytes: Uint8Array;
    if (this.json) {
      checkJson(body, path, 0);
      bytes = encoder.encode(JSON.stringify(body));
    } else {
      bytes = codec.encode(body, path);
    }
    return bytes.byteLength > this.compressAbove ? gzipSync(bytes) : bytes;
  }

  /** Decode a body written by any app's format. Throws on malformed input. */
  decode(codec: Codec, bytes: Uint8Array): unknown {
    let plain = bytes;
    if (plain[0] === GZIP_0 && plain[1] === GZIP_1) plain = gunzipSync(plain, { maxOutputLength: MAX_INFLATED });
    if (plain[0] === JSON_ARRAY) return JSON.parse(decoder.decode(plain)) as unknown;
    return codec.decode(plain);
  }
}

/** Bodies of apps that chose nothing: msgpack, never compressed. */
export const DEFAULT_BODY_FORMAT = new BodyFormat();

/**
 * The codec of an app, with the body format it writes task messages in.
 *
 * @example
 * const codec = new TaskCodec(new BodyFormat({ serializer: "json" }));
 */
export class TaskCodec extends Codec {
  constructor(readonly bodies: BodyFormat = DEFAULT_BODY_FORMAT) {
    super();
  }
}
