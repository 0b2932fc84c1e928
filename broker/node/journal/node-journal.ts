// The durable node's record of everything its broker holds, as a sequence of small
// msgpack records in the durable log: declarations, each message copy that entered a
// queue (with a sequence number), each copy that left for good, dead-lettering,
// revocations. Replaying the records rebuilds the broker; the live state is then
// written back compactly.
import { Decoder, Encoder } from "@msgpack/msgpack";
import { DEFAULT_REVOCATION_TTL_MS } from "../../revocations.ts";
import type { DeadLetter, Envelope } from "../../envelope.ts";
import type { BrokerJournal, EmbeddedBroker } from "../../embedded/embedded-broker.ts";
import type { JournalRef } from "../../embedded/broker-journal.ts";
import { envelopeFromWire, envelopeToWire } from "../protocol.ts";
import { encodeWithEnvelope } from "../encoded-envelope.ts";
import { FrameEncoder } from "../frame-encoder.ts";
import { RecordArena } from "../pooled-bytes.ts";
import type { ExchangeType, QueueOptions, RevocationOptions } from "../../transport.ts";

const Kind = {
  Queue: 1,
  Exchange: 2,
  Bind: 3,
  Enqueue: 4,
  Remove: 5,
  Dead: 6,
  Revoke: 7,
  Pause: 8,
} as const;

type JournalRecord =
  | [typeof Kind.Queue, string, QueueOptions]
  | [typeof Kind.Exchange, string, ExchangeType]
  | [typeof Kind.Bind, string, string, string]
  | [typeof Kind.Enqueue, number, string, unknown]
  | [typeof Kind.Enqueue, number, string, unknown, [from: string, reason: string, at: number]]
  | [typeof Kind.Remove, number]
  | [typeof Kind.Dead, number, number, string, string, string, number]
  | [typeof Kind.Revoke, readonly string[], number, boolean]
  | [typeof Kind.Pause, string, boolean];

const ignore = (): void => {};

/** Where records go: the durable log's append, which resolves once the record is durable. */
export type RecordSink = (record: Uint8Array) => Promise<void>;

export class NodeJournal implements BrokerJournal {
  private readonly encoder = new Encoder();
  /** For the records of every message (enqueue and remove): arrays of numbers and strings, which it writes by hand, byte for byte as the library. */
  private readonly messageEncoder = new FrameEncoder();
  /** Where the records of messages still held are kept; a new one at each snapshot (see RecordArena). */
  private arena = new RecordArena();
  private nextSeq = 1;
  /** The append made by the last journalled change (what a confirm must wait for). */
  lastWrite: Promise<void> | undefined;
  /** Message copies the broker holds (ready, delayed, unacknowledged or dead-lettered). */
  held = 0;
  /** Called when a message copy leaves for good (flow control waits on it). */
  onRemoved: (() => void) | undefined;

  constructor(private sink: RecordSink) {}

  private encodedEnvelope: Envelope | undefined;
  private encodedBytes: Uint8Array | undefined;

  /**
   * For the publish being made now: `envelope`'s msgpack bytes as they came
   * in, which its records take instead of encoding it again (cleared after).
   */
  encodedAs(envelope: Envelope | undefined, bytes: Uint8Array | undefined): void {
    this.encodedEnvelope = envelope;
    this.encodedBytes = bytes;
  }

  /**
   * Number the next message copy `seq` (recovery gives each restored copy the
   * number it has in the log, so records appended later name it rightly even
   * when the log is not rewritten at start); later copies are numbered after.
   */
  numberNext(seq: number): void {
    this.nextSeq = seq;
  }

  /** Number copies after `seq` from now on (at least). */
  numberAfter(seq: number): void {
    if (this.nextSeq <= seq) this.nextSeq = seq + 1;
  }

  /** Send records elsewhere from now on (recovery collects them, then the node appends). */
  redirect(sink: RecordSink): void {
    this.sink = sink;
  }

  private write(record: JournalRecord, encoder: Encoder | FrameEncoder = this.encoder): Uint8Array {
    const bytes = encoder.encode(record);
    this.lastWrite = this.sinkWrite(bytes);
    return bytes;
  }

  private sinkWrite(bytes: Uint8Array): Promise<void> {
    const write = this.sink(bytes);
    // A group commit's records share one promise; a failed write is answered to
    // each publish that waits on it, and must not be an unhandled rejection
    // when only unanswered acks wait on it.
    if (write !== this.lastWrite) write.catch(ignore);
    return write;
  }

  /**
   * The records that rebuild the current state, for compaction: declarations,
   * revocations still in force, and the record of every message copy held
   * (the very bytes appended for it, so its sequence number stays the same and
   * an ack appended after the compaction still names it). Those records move
   * to a fresh arena, so the chunks of the old one go with the records that
   * have left them.
   */
  snapshot(now: number = Date.now()): Uint8Array[] {
    const revocations = new Set<Uint8Array>();
    for (const [id, [bytes, expiresAt]] of this.revocations) {
      if (expiresAt > now) revocations.add(bytes);
      else this.revocations.delete(id);
    }
    const records = [...this.structure.values(), ...revocations];
    this.arena = new RecordArena();
    for (const [seq, bytes] of this.live) {
      const moved = this.arena.copy(bytes);
      this.live.set(seq, moved);
      records.push(moved);
    }
    return records;
  }

  /** Declarations and bindings, one record each (a repeat replaces the earlier one). */
  private readonly structure = new Map<string, Uint8Array>();
  private readonly revocations = new Map<string, [bytes: Uint8Array, expiresAt: number]>();
  /** seq → the record of a message copy still held, in sequence order. */
  private readonly live = new Map<number, Uint8Array>();

  queueDeclared(name: string, options: QueueOptions): void {
    const key = `q\u0000${name}`;
    this.structure.delete(key);
    this.structure.set(key, this.write([Kind.Queue, name, options]));
  }
  exchangeDeclared(name: string, type: ExchangeType): void {
    this.structure.set(`x\u0000${name}`, this.write([Kind.Exchange, name, type]));
  }
  queueBound(queue: string, exchange: string, pattern: string): void {
    this.structure.set(
      `b\u0000${queue}\u0000${exchange}\u0000${pattern}`,
      this.write([Kind.Bind, queue, exchange, pattern]),
    );
  }
  enqueued(ref: JournalRef, queue: string, envelope: Envelope, deadLetter?: DeadLetter): void {
    this.held++;
    const seq = this.nextSeq++;
    ref.journalSeq = seq;
    if (deadLetter === undefined && envelope === this.encodedEnvelope) {
      const bytes = encodeWithEnvelope(this.messageEncoder, [Kind.Enqueue, seq, queue], this.encodedBytes!, this.arena);
      this.lastWrite = this.sinkWrite(bytes);
      this.live.set(seq, bytes);
      return;
    }
    const wire = envelopeToWire(envelope);
    const letter =
      deadLetter === undefined
        ? undefined
        : ([deadLetter.queue, deadLetter.reason, deadLetter.at] as [string, string, number]);
    this.live.set(
      seq,
      this.write(letter === undefined ? [Kind.Enqueue, seq, queue, wire] : [Kind.Enqueue, seq, queue, wire, letter]),
    );
  }
  removed(ref: JournalRef): void {
    this.held--;
    const seq = ref.journalSeq;
    if (seq !== 0) {
      this.live.delete(seq);
      this.writeRemoval(seq);
    }
    this.onRemoved?.();
  }

  /** Acks whose remove record the log refused (it had failed): written again once it reopens. */
  private readonly refusedRemovals: number[] = [];
  private removalsWrite: Promise<void> | undefined;
  private removalsOfWrite: number[] = [];

  // One list and one handler per write (a group commit's records share it), not per ack: this is the hot path.
  private writeRemoval(seq: number): void {
    this.write([Kind.Remove, seq], this.messageEncoder);
    const write = this.lastWrite as Promise<void>;
    if (write !== this.removalsWrite) {
      const seqs: number[] = [];
      this.removalsWrite = write;
      this.removalsOfWrite = seqs;
      write.catch(() => {
        for (let i = 0; i < seqs.length; i++) this.refusedRemovals.push(seqs[i]);
      });
    }
    this.removalsOfWrite.push(seq);
  }

  /**
   * Write again the remove records the log refused while it had failed, so
   * the messages acked meanwhile do not come back after a restart. A remove
   * names its copy's sequence number, which is never reused, so writing one
   * late is the same as writing it on time.
   */
  recordRefusedRemovals(): void {
    const seqs = this.refusedRemovals.splice(0);
    for (let i = 0; i < seqs.length; i++) this.writeRemoval(seqs[i]);
  }
  deadLettered(ref: JournalRef, deadRef: JournalRef, dlq: string, letter: DeadLetter): void {
    const seq = ref.journalSeq;
    const deadSeq = this.nextSeq++;
    deadRef.journalSeq = deadSeq;
    if (seq === 0) return;
    this.live.delete(seq);
    this.write([Kind.Dead, seq, deadSeq, dlq, letter.queue, letter.reason, letter.at]);
    // What a compaction keeps for it: the dead letter as a message of its own (not appended now).
    this.live.set(
      deadSeq,
      this.encoder.encode([
        Kind.Enqueue,
        deadSeq,
        dlq,
        envelopeToWire(letter.envelope),
        [letter.queue, letter.reason, letter.at],
      ]),
    );
  }
  paused(queue: string, paused: boolean): void {
    const key = `p\u0000${queue}`;
    const bytes = this.write([Kind.Pause, queue, paused]);
    // A compaction keeps only the pauses in force.
    if (paused) this.structure.set(key, bytes);
    else this.structure.delete(key);
  }
  revoked(ids: readonly string[], options: RevocationOptions): void {
    const expiresAt = Date.now() + (options.ttlMs ?? DEFAULT_REVOCATION_TTL_MS);
    const bytes = this.write([Kind.Revoke, ids, expiresAt, options.terminate === true]);
    for (const id of ids) this.revocations.set(id, [bytes, expiresAt]);
  }
}

interface LiveMessage {
  queue: string;
  envelope: Envelope;
  deadLetter?: DeadLetter;
}

export interface ReplaySummary {
  readonly messages: number;
  readonly queues: number;
  readonly revocations: number;
}

/**
 * Rebuild `broker` from `records` (oldest first): declarations, revocations
 * that have not expired, and every message copy not removed, in its queue or
 * dead-letter queue. A record that cannot be read is reported and skipped.
 */
export const replay = async (
  records: readonly Uint8Array[],
  broker: EmbeddedBroker,
  report: (reason: string) => void,
  now: number = Date.now(),
  journal?: NodeJournal,
): Promise<ReplaySummary> => {
  let maxSeq = 0;
  const decoder = new Decoder();
  const queues = new Map<string, QueueOptions>();
  const exchanges = new Map<string, ExchangeType>();
  const bindings = new Map<string, [string, string, string]>();
  const live = new Map<number, LiveMessage>();
  const revocations = new Map<string, { expiresAt: number; terminate: boolean }>();
  const paused = new Set<string>();
  for (let i = 0; i < records.length; i++) {
    let record: JournalRecord;
    try {
      record = decoder.decode(records[i]) as JournalRecord;
      switch (record[0]) {
        case Kind.Queue:
          queues.set(record[1], { ...(queues.get(record[1]) ?? {}), ...record[2] });
          break;
        case Kind.Exchange:
          exchanges.set(record[1], record[2]);
          break;
        case Kind.Bind:
          bindings.set(`${record[1]}\u0000${record[2]}\u0000${record[3]}`, [record[1], record[2], record[3]]);
          break;
        case Kind.Enqueue: {
          if (record[1] > maxSeq) maxSeq = record[1];
          // Records are views into the log's read buffers: keep a copy of the body, not the whole buffer.
          const wire = envelopeFromWire(record[3]);
          const envelope = { ...wire, body: wire.body.slice() };
          const dead = record[4];
          live.set(record[1], {
            queue: record[2],
            envelope,
            ...(dead === undefined ? {} : { deadLetter: { envelope, queue: dead[0], reason: dead[1], at: dead[2] } }),
          });
          break;
        }
        case Kind.Remove:
          live.delete(record[1]);
          break;
        case Kind.Dead: {
          const [, seq, deadSeq, dlq, from, reason, at] = record;
          if (deadSeq > maxSeq) maxSeq = deadSeq;
          const message = live.get(seq);
          live.delete(seq);
          if (message !== undefined) {
            live.set(deadSeq, {
              queue: dlq,
              envelope: message.envelope,
              deadLetter: { envelope: message.envelope, queue: from, reason, at },
            });
          }
          break;
        }
        case Kind.Revoke:
          for (const id of record[1]) revocations.set(id, { expiresAt: record[2], terminate: record[3] });
          break;
        case Kind.Pause:
          if (record[2]) paused.add(record[1]);
          else paused.delete(record[1]);
          break;
        default:
          report(`record ${i}: unknown kind ${String((record as unknown[])[0])}`);
      }
    } catch (error) {
      report(`record ${i} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  for (const [name, options] of queues) await broker.declareQueue(name, options);
  for (const [name, type] of exchanges) await broker.declareExchange(name, type);
  for (const [queue, exchange, pattern] of bindings.values()) {
    if (!queues.has(queue)) await broker.declareQueue(queue);
    await broker.bindQueue(queue, exchange, pattern);
  }
  for (const queue of paused) await broker.pause(queue);
  let revoked = 0;
  for (const [id, { expiresAt, terminate }] of revocations) {
    if (expiresAt <= now) continue;
    await broker.revoke([id], { ttlMs: expiresAt - now, terminate });
    revoked++;
  }
  const seqs = [...live.keys()].sort((a, b) => a - b);
  for (const seq of seqs) {
    const message = live.get(seq) as LiveMessage;
    journal?.numberNext(seq);
    // Whether it was delivered before the restart is not logged: count it as delivered once, so it arrives
    // marked redelivered and a worker checks for a result stored by an earlier run before running it again.
    broker.restore(
      message.queue,
      message.envelope,
      message.deadLetter === undefined ? { deliveryCount: 1 } : { deadLetter: message.deadLetter },
    );
  }
  journal?.numberAfter(maxSeq);
  return { messages: seqs.length, queues: queues.size, revocations: revoked };
};
