import { Data } from "effect";

/**
 * The wire frame: `[u32 length, big-endian][u8 type][payload]`, where length
 * counts the type byte and the payload. The parser is hand-written and
 * allocation-aware: it reads frames straight out of the socket's chunks and
 * copies only a frame that straddles two chunks.
 *
 * @example
 * const parser = new FrameParser(1 << 20, (type, payload) => handle(type, payload));
 * socket.on("data", (chunk) => parser.push(chunk));
 */
export class FrameTooLargeError extends Data.TaggedError("FrameTooLargeError")<{
  readonly size: number;
  readonly max: number;
}> {
  override get message(): string {
    return `frame of ${this.size} bytes exceeds the maximum of ${this.max} bytes`;
  }
}

export class MalformedFrameError extends Data.TaggedError("MalformedFrameError")<{
  readonly reason: string;
}> {
  override get message(): string {
    return `malformed frame: ${this.reason}`;
  }
}

export const FRAME_HEADER_BYTES = 5;
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

export type FrameHandler = (type: number, payload: Uint8Array) => void;

export class FrameParser {
  /** The first bytes of a frame header (fewer than 4), kept until the next chunk. */
  private pending: Uint8Array | undefined;
  /**
   * A frame whose header has arrived but not all of its bytes, filled in
   * place as chunks come: a large frame arrives in many chunks (64 KiB each
   * from a socket), and joining what was kept to each new chunk copied an
   * 8 MiB frame about 128 times.
   */
  private partial: Uint8Array | undefined;
  private filled = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: FrameHandler,
  ) {}

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return (this.pending?.byteLength ?? 0) + this.filled;
  }

  /** Feed bytes; calls the handler once per whole frame. Throws FrameTooLargeError or MalformedFrameError (the connection should close). */
  push(chunk: Uint8Array): void {
    let bytes = chunk;
    if (this.partial !== undefined) {
      const frame = this.partial;
      const take = Math.min(frame.byteLength - this.filled, chunk.byteLength);
      frame.set(take === chunk.byteLength ? chunk : chunk.subarray(0, take), this.filled);
      this.filled += take;
      if (this.filled < frame.byteLength) return;
      this.partial = undefined;
      this.filled = 0;
      this.onFrame(frame[4], frame.subarray(5));
      if (take === chunk.byteLength) return;
      bytes = chunk.subarray(take);
    } else if (this.pending !== undefined) {
      const joined = new Uint8Array(this.pending.byteLength + chunk.byteLength);
      joined.set(this.pending, 0);
      joined.set(chunk, this.pending.byteLength);
      bytes = joined;
      this.pending = undefined;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let offset = 0;
    const end = bytes.byteLength;
    while (end - offset >= 4) {
      const length = view.getUint32(offset);
      if (length < 1) throw new MalformedFrameError({ reason: "zero length (a frame holds at least its type byte)" });
      if (length + 4 > this.maxFrameBytes) throw new FrameTooLargeError({ size: length + 4, max: this.maxFrameBytes });
      if (end - offset - 4 < length) {
        // The header is whole and checked: keep the frame's bytes in a buffer of its full size.
        this.partial = new Uint8Array(length + 4);
        this.partial.set(bytes.subarray(offset, end));
        this.filled = end - offset;
        return;
      }
      const type = bytes[offset + 4];
      this.onFrame(type, bytes.subarray(offset + 5, offset + 4 + length));
      offset += 4 + length;
    }
    if (offset < end) this.pending = bytes.slice(offset);
  }
}

/** One frame's bytes: header and payload in a single buffer. */
export const encodeFrame = (type: number, payload: Uint8Array | undefined): Uint8Array => {
  const size = payload?.byteLength ?? 0;
  const frame = new Uint8Array(FRAME_HEADER_BYTES + size);
  new DataView(frame.buffer).setUint32(0, size + 1);
  frame[4] = type;
  if (payload !== undefined) frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
};

/** Where a FrameWriter sends its batches (a socket). */
export interface FrameSink {
  write(bytes: Uint8Array): boolean;
}

/**
 * Collects frames and writes them in one batch per event-loop turn, so a
 * burst of publishes or deliveries costs one syscall rather than one each.
 * Frames are written straight into the batch's buffer (no buffer per frame).
 * `write` returning false (the socket's buffer is full) is reported through
 * `onBackpressure` so the owner can stop producing until it drains.
 */
export class FrameWriter {
  private batch = new Uint8Array(INITIAL_BATCH_BYTES);
  private view = new DataView(this.batch.buffer);
  private length = 0;
  private scheduled = false;

  constructor(
    private readonly sink: FrameSink,
    private readonly onBackpressure: () => void = () => {},
  ) {}

  send(type: number, payload?: Uint8Array): void {
    const size = payload?.byteLength ?? 0;
    const needed = this.length + FRAME_HEADER_BYTES + size;
    if (needed > this.batch.byteLength) this.grow(needed);
    this.view.setUint32(this.length, size + 1);
    this.batch[this.length + 4] = type;
    if (payload !== undefined) this.batch.set(payload, this.length + FRAME_HEADER_BYTES);
    this.length = needed;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Write everything queued now. */
  flush(): void {
    this.scheduled = false;
    if (this.length === 0) return;
    const bytes = this.batch.subarray(0, this.length);
    // The socket keeps the bytes until they are sent: the next batch gets a buffer of its own.
    this.batch = new Uint8Array(Math.max(INITIAL_BATCH_BYTES, Math.min(this.batch.byteLength, MAX_KEPT_BATCH_BYTES)));
    this.view = new DataView(this.batch.buffer);
    this.length = 0;
    if (!this.sink.write(bytes)) this.onBackpressure();
  }

  private grow(needed: number): void {
    const bigger = new Uint8Array(Math.max(needed, this.batch.byteLength * 2));
    bigger.set(this.batch.subarray(0, this.length));
    this.batch = bigger;
    this.view = new DataView(bigger.buffer);
  }
}

const INITIAL_BATCH_BYTES = 16 * 1024;
const MAX_KEPT_BATCH_BYTES = 1024 * 1024;
