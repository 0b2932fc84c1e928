// Cheap homes for bytes: on the Node.js this runs on, an array of more than 64 bytes with a
// backing store of its own costs about 2 µs to make, a view of a shared buffer a tenth of that.
// `pooledCopy` for bytes held briefly, a `RecordArena` for records held for long.

/**
 * `bytes` copied into Node's shared buffer pool (Buffer.allocUnsafe), as a
 * plain Uint8Array: a Buffer's slice() is a view, where code holding a
 * Uint8Array expects slice() to copy. For bytes held briefly (a batch until
 * the socket has it, a record until the log writes it): a copy keeps its
 * 8 KiB pool alive.
 *
 * @example
 * const copy = pooledCopy(encoder.encodeSharedRef(frame)); // survives the encoder's next call
 */
export const pooledCopy = (bytes: Uint8Array): Uint8Array => {
  const pooled = Buffer.allocUnsafe(bytes.length);
  pooled.set(bytes);
  return new Uint8Array(pooled.buffer, pooled.byteOffset, bytes.length);
};

/**
 * Room for many small records in a few large buffers: a record is a view of
 * the arena's current chunk, so making one costs a view (about 0.2 µs). A chunk lives while any record in it does, so a
 * record held for long keeps its neighbours' room too: whoever holds records
 * for long moves them to a fresh arena now and then (`copy`), as the node's
 * journal does at every compaction, which bounds the waste to what was
 * written since.
 *
 * @example
 * const arena = new RecordArena();
 * const record = arena.alloc(150); // a view of 150 bytes, to fill
 * const moved = new RecordArena().copy(record); // the same bytes, in another arena
 */
export class RecordArena {
  private chunk = new Uint8Array(0);
  private used = 0;

  /** Uninitialised room for one record of `size` bytes. */
  alloc(size: number): Uint8Array {
    if (size > MAX_SHARED_BYTES) return new Uint8Array(size);
    if (this.used + size > this.chunk.length) {
      this.chunk = new Uint8Array(CHUNK_BYTES);
      this.used = 0;
    }
    const at = this.used;
    this.used = at + size;
    return this.chunk.subarray(at, at + size);
  }

  /** `bytes` copied into this arena. */
  copy(bytes: Uint8Array): Uint8Array {
    const copy = this.alloc(bytes.length);
    copy.set(bytes);
    return copy;
  }
}

const CHUNK_BYTES = 16 * 1024;
/** Larger records get buffers of their own: they would leave much of a chunk unused. */
const MAX_SHARED_BYTES = 2 * 1024;
