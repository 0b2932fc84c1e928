/**
 * What RabbitMQ cannot tell a client without its management plugin, kept by
 * every transport on one stream (record-stream.ts, `<prefix>.queues`, no
 * retention): the queues declared through celerity (AMQP cannot list
 * queues), which are dead-letter queues and where each queue's dead letters
 * go, which queues are paused (RabbitMQ has no pause: each transport stops
 * its own consumers of a paused queue), and when each queue was last purged
 * (its delayed messages, still in the delay ladder, are dropped when they
 * come due). A queue is written once, when a transport first declares it;
 * a pause, resume or purge once each; an auto-delete queue found gone once.
 *
 * @module
 */
import type { AmqpLink } from "../amqp-link.ts";
import type { ConfirmedPublisher } from "../confirmed-publisher.ts";
import { RecordStream } from "./record-stream.ts";

/** What the registry knows of one queue. */
export interface RegisteredQueue {
  readonly name: string;
  /** Where its dead letters go ("" for a dead-letter or auto-delete queue). */
  readonly deadLetterQueue: string;
  readonly isDeadLetterQueue: boolean;
  readonly autoDelete: boolean;
}

/** Declared queues, pauses and purges shared by every transport on a RabbitMQ vhost and prefix. */
export class QueueRegistry {
  private readonly stream: RecordStream;
  private readonly queues = new Map<string, RegisteredQueue>();
  private readonly paused = new Set<string>();
  private readonly purged = new Map<string, number>();
  private readonly pauseListeners = new Set<(queue: string, paused: boolean) => void>();

  constructor(link: AmqpLink, publisher: ConfirmedPublisher, name: string, log: (message: string) => void) {
    this.stream = new RecordStream(
      link,
      publisher,
      name,
      "queue registry",
      {},
      (record, own) => this.apply(record, own),
      log,
    );
  }

  /** Read the registry (again, after a reconnection) and resolve once caught up with it. */
  open(): Promise<void> {
    return this.stream.open();
  }

  close(): Promise<void> {
    return this.stream.close();
  }

  /** Every queue registered and not found gone, by name. */
  list(): RegisteredQueue[] {
    return [...this.queues.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get(queue: string): RegisteredQueue | undefined {
    return this.queues.get(queue);
  }

  /** Register `queue` unless it is registered as such already; resolves once written. */
  async declare(queue: RegisteredQueue): Promise<void> {
    const known = this.queues.get(queue.name);
    if (
      known !== undefined &&
      known.deadLetterQueue === queue.deadLetterQueue &&
      known.isDeadLetterQueue === queue.isDeadLetterQueue &&
      known.autoDelete === queue.autoDelete
    )
      return;
    await this.write({ declared: queue.name, ...queue });
  }

  /** Forget an auto-delete queue RabbitMQ deleted with its last consumer. */
  async gone(queue: string): Promise<void> {
    if (this.queues.has(queue)) await this.write({ gone: queue });
  }

  isPaused(queue: string): boolean {
    return this.paused.has(queue);
  }

  async setPaused(queue: string, paused: boolean): Promise<void> {
    if (this.paused.has(queue) !== paused) await this.write({ paused: queue, value: paused });
  }

  /** Hear pauses and resumes made by any transport, this one included. */
  onPause(listener: (queue: string, paused: boolean) => void): () => void {
    this.pauseListeners.add(listener);
    return () => this.pauseListeners.delete(listener);
  }

  /** When `queue` was last purged (epoch ms), if ever: a delayed message sent before it is dropped when due. */
  purgedAt(queue: string): number | undefined {
    return this.purged.get(queue);
  }

  async purge(queue: string, at: number): Promise<void> {
    await this.write({ purged: queue, at });
  }

  /** Apply at once here (so this transport's next call sees it), then write for every other transport. */
  private async write(record: Record<string, unknown>): Promise<void> {
    this.apply(record, false);
    await this.stream.append(record);
  }

  private apply(record: Record<string, unknown>, own: boolean): void {
    const { declared, gone, paused, purged } = record;
    if (typeof declared === "string") {
      this.queues.set(declared, {
        name: declared,
        deadLetterQueue: typeof record.deadLetterQueue === "string" ? record.deadLetterQueue : "",
        isDeadLetterQueue: record.isDeadLetterQueue === true,
        autoDelete: record.autoDelete === true,
      });
    } else if (typeof gone === "string") {
      this.queues.delete(gone);
      if (this.paused.delete(gone)) for (const listener of this.pauseListeners) listener(gone, false);
    } else if (typeof paused === "string") {
      // Applied when written: read back after a later pause or resume of this transport's, it would undo it.
      if (own) return;
      const value = record.value === true;
      if (this.paused.has(paused) === value) return;
      if (value) this.paused.add(paused);
      else this.paused.delete(paused);
      for (const listener of this.pauseListeners) listener(paused, value);
    } else if (typeof purged === "string" && typeof record.at === "number") {
      this.purged.set(purged, Math.max(record.at, this.purged.get(purged) ?? 0));
    }
  }
}
