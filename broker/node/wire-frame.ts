// The wire frame: `[u32 length, big-endian][u8 type][payload]`, where length counts the
// type byte and the payload; the parser and the batching writer. The parser is
// hand-written and allocation-aware: it reads frames straight out of the socket's chunks
// and copies only a frame that straddles two chunks.
import { pooledCopy } from "./pooled-bytes.ts";
import { Data } from "effect";

/**
 * A frame longer than the receiver's maximum (`maxFrameBytes`): the connection that sent
 * it is closed with this reason.
 *
 * @example
 * // logged by the node: "connection-2 closed: frame of 33554432 bytes exceeds the maximum of 16777216 bytes"
 */
export class FrameTooLargeError extends Data.TaggedError("FrameTooLargeError")<{
  readonly size: number;
  readonly max: number;
}> {
  override get message(): string {
    return `frame of ${this.size} bytes exceeds the maximum of ${this.max} bytes`;
  }
}

/**
 * A frame that cannot be read (an unknown type, a length that cannot be); the node closes that connection with this reason.
 *
 * @example
 * // logged by the node: "connection-2 closed: malformed frame: <reason>"
 */
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

/**
 * Reads frames straight out of a socket's chunks, copying only a frame that straddles two.
 *
 * @example
 * const parser = new FrameParser(1 << 20, (type, payload) => handle(type, payload));
 * socket.on("data", (chunk) => parser.push(chunk));
 */
export class FrameParser {
  /** The frame being reassembled across chunks, sized once its length is known; `filled` bytes of it arrived. */
  private partial: Uint8Array | undefined;
  private filled = 0;
  /** A length prefix split across chunks. */
  private readonly prefix = new Uint8Array(4);
  private prefixFilled = 0;
  /** When the frame being reassembled began (Date.now()), or 0 when none is. */
  private partialSince = 0;

  constructor(
    /** Largest frame accepted, header included; may be raised once a peer is trusted (after a handshake). */
    public maxFrameBytes: number,
    private readonly onFrame: FrameHandler,
  ) {}

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return this.prefixFilled + (this.partial === undefined ? 0 : this.filled);
  }

  /** How long the frame now arriving has taken so far, in ms (0 when none is arriving). */
  pendingForMs(now: number): number {
    return this.partialSince === 0 ? 0 : now - this.partialSince;
  }

  /**
   * Feed bytes; calls the handler once per whole frame. Throws
   * FrameTooLargeError or MalformedFrameError (the connection should close).
   * Frames within one chunk are read in place; a frame split across chunks
   * is copied once into a buffer of its own size, so reassembly costs time
   * linear in its bytes however small the pieces.
   */
  push(chunk: Uint8Array): void {
    let offset = 0;
    const end = chunk.byteLength;
    if (this.prefixFilled > 0 || this.partial !== undefined) {
      if (this.partial === undefined) {
        const take = Math.min(4 - this.prefixFilled, end);
        this.prefix.set(chunk.subarray(0, take), this.prefixFilled);
        this.prefixFilled += take;
        offset = take;
        if (this.prefixFilled < 4) return;
        this.prefixFilled = 0;
        this.begin(this.prefix, 0, 4);
      }
      const frame = this.partial as Uint8Array;
      const take = Math.min(frame.byteLength - this.filled, end - offset);
      frame.set(chunk.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled < frame.byteLength) return;
      this.partial = undefined;
      this.partialSince = 0;
      this.onFrame(frame[4], frame.subarray(FRAME_HEADER_BYTES));
    }
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (end - offset >= 4) {
      const length = this.checkedLength(view.getUint32(offset));
      if (end - offset - 4 < length) break;
      this.onFrame(chunk[offset + 4], chunk.subarray(offset + FRAME_HEADER_BYTES, offset + 4 + length));
      offset += 4 + length;
    }
    if (offset === end) return;
    if (end - offset < 4) {
      this.prefix.set(chunk.subarray(offset), 0);
      this.prefixFilled = end - offset;
      this.partialSince ||= Date.now();
      return;
    }
    this.begin(chunk, offset, end - offset);
  }

  private checkedLength(length: number): number {
    if (length < 1) throw new MalformedFrameError({ reason: "zero length (a frame holds at least its type byte)" });
    if (length + 4 > this.maxFrameBytes) throw new FrameTooLargeError({ size: length + 4, max: this.maxFrameBytes });
    return length;
  }

  /** Start reassembling a frame from `count` bytes of `bytes` at `offset` (its length prefix first). */
  private begin(bytes: Uint8Array, offset: number, count: number): void {
    const length = this.checkedLength(new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getUint32(0));
    const frame = new Uint8Array(4 + length);
    frame.set(bytes.subarray(offset, offset + count), 0);
    this.partial = frame;
    this.filled = count;
    this.partialSince ||= Date.now();
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
 * A frame someone waits on (a request, its answer) may be sent `promptly`:
 * the first such frame of a turn is written once the code running now and
 * the promise callbacks it queued have run, so a lone request waits for
 * nothing, and the answers one fsync releases together leave together; the
 * frames that follow join the turn's batch.
 * Batched frames are written straight into the batch's buffer (no buffer
 * per frame).
 * `write` returning false (the socket's buffer is full) is reported through
 * `onBackpressure` so the owner can stop producing until it drains.
 */
export class FrameWriter {
  private batch = new Uint8Array(INITIAL_BATCH_BYTES);
  private view = new DataView(this.batch.buffer);
  private length = 0;
  private scheduled = false;
  /** A prompt write is made (or due) this turn. */
  private promptThisTurn = false;

  constructor(
    private readonly sink: FrameSink,
    private readonly onBackpressure: () => void = () => {},
  ) {}

  /**
   * Add the frame to the batch; for the first prompt frame of the turn,
   * write the batch at the end of the current run of code and its promise
   * callbacks rather than at the end of the turn. The batches other writers of this process gather are
   * written first: a frame sent earlier on another connection (a state told
   * to the node) still leaves before this one (a read of it from a second
   * connection).
   */
  sendPromptly(type: number, payload?: Uint8Array): void {
    this.send(type, payload);
    // Once a turn: the prompt frames after that write join the turn's batch, so a cascade of
    // callbacks sending one each costs two writes a turn at most.
    if (this.promptThisTurn) return;
    this.promptThisTurn = true;
    queueMicrotask(this.flushPromptly);
  }

  private readonly flushPromptly = (): void => {
    for (const writer of gathering) if (writer !== this) writer.flush();
    this.flush();
  };

  /** Add the frame to this turn's batch, written at the end of the turn (or at `flush`). */
  send(type: number, payload?: Uint8Array): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushAtTurnEnd);
    }
    if (this.length === 0) gathering.add(this);
    const size = payload?.byteLength ?? 0;
    const needed = this.length + FRAME_HEADER_BYTES + size;
    if (needed > this.batch.byteLength) this.grow(needed);
    this.view.setUint32(this.length, size + 1);
    this.batch[this.length + 4] = type;
    if (payload !== undefined) this.batch.set(payload, this.length + FRAME_HEADER_BYTES);
    this.length = needed;
  }

  private readonly flushAtTurnEnd = (): void => {
    this.scheduled = false;
    this.promptThisTurn = false;
    this.flush();
  };

  /** Write everything queued now. */
  flush(): void {
    if (this.length === 0) return;
    gathering.delete(this);
    let bytes: Uint8Array;
    // The socket keeps the bytes until they are sent: a small batch is copied out (pooledCopy), a
    // large one keeps its buffer and the next batch gets a new one.
    if (this.length <= COPIED_BATCH_BYTES) bytes = pooledCopy(this.batch.subarray(0, this.length));
    else {
      bytes = this.batch.subarray(0, this.length);
      this.batch = new Uint8Array(Math.max(INITIAL_BATCH_BYTES, Math.min(this.batch.byteLength, MAX_KEPT_BATCH_BYTES)));
      this.view = new DataView(this.batch.buffer);
    }
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

/** The writers of this process holding frames not yet written. */
const gathering = new Set<FrameWriter>();

const INITIAL_BATCH_BYTES = 16 * 1024;
/** A batch up to this size is written as a copy, so the writer keeps its buffer (no 16 KiB to zero per answer). */
const COPIED_BATCH_BYTES = 2 * 1024;
const MAX_KEPT_BATCH_BYTES = 1024 * 1024;
