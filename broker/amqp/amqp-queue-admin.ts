/**
 * Queue management (QueueAdmin) on RabbitMQ: listing the queues declared
 * through celerity, purging, pausing and resuming them, and requeueing or
 * discarding dead letters. What AMQP cannot tell (which queues exist, which
 * are paused) comes from the queue registry (queue-registry.ts); the rest is
 * asked of RabbitMQ on channels of the transport's connection.
 *
 * @module
 */
import type { DeadLetter } from "../envelope.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { QueueAdmin, QueueInfo } from "../queue-admin.ts";
import { ReplyCode, mapAmqpError, replyCode } from "./amqp-errors.ts";
import type { AmqpLink } from "./amqp-link.ts";
import { deadLetterOf } from "./amqp-message.ts";
import { checkName } from "./amqp-names.ts";
import type { QueueRegistry } from "./streams/queue-registry.ts";

/** What queue management needs of its transport. */
export interface QueueAdminHost {
  readonly link: AmqpLink;
  readonly registry: QueueRegistry;
  /** Throw BrokerClosedError if the transport is closed. */
  open(operation: string): void;
  /** Wait until connected and caught up (AmqpConnectionError after the connect timeout). */
  whenReady(operation: string): Promise<void>;
  /** Declare `queue` with the defaults unless it exists. */
  ensureQueue(queue: string): Promise<void>;
  /** `queue` itself if it is a dead-letter queue, else where its dead letters go ("" for none). */
  deadLetterQueueOf(queue: string): string;
  /** Whether RabbitMQ holds `queue`. */
  exists(queue: string): Promise<boolean>;
  /** Publish a dead letter back to the queue it came from. */
  requeue(letter: DeadLetter): Promise<void>;
}

/**
 * QueueAdmin for AmqpTransport, which hands its calls here.
 *
 * @example
 * const admin = new AmqpQueueAdmin(host);
 * await admin.pause("emails"); // every transport's consumers of "emails" stop
 */
export class AmqpQueueAdmin implements QueueAdmin {
  constructor(private readonly host: QueueAdminHost) {}

  /**
   * The queues declared through celerity on this vhost and prefix (AMQP has
   * no way to list queues; the queue registry keeps them), each with `ready`
   * and `consumers` as RabbitMQ counts them. `delayed` and `unacked` are
   * undefined: delayed messages wait in the shared delay ladder, not counted
   * by destination, and AMQP reports no unacknowledged count (RabbitMQ's
   * management plugin does: docs/control.md).
   */
  async listQueues(): Promise<readonly QueueInfo[]> {
    this.host.open("list queues");
    await this.host.whenReady("list queues");
    const infos: QueueInfo[] = [];
    for (const queue of this.host.registry.list()) {
      const counted = await this.host.link
        .withChannel("list queues", (channel) => channel.checkQueue(queue.name))
        .catch((error: unknown) => {
          if (replyCode(error) !== ReplyCode.notFound)
            throw mapAmqpError(error, "queue.declare", { kind: "queue", name: queue.name });
          return undefined;
        });
      if (counted === undefined) {
        // Deleted with its last consumer (auto-delete), or by someone else: forgotten for every transport.
        await this.host.registry.gone(queue.name);
        continue;
      }
      infos.push({
        name: queue.name,
        ready: counted.messageCount,
        delayed: undefined,
        unacked: undefined,
        consumers: counted.consumerCount,
        paused: this.host.registry.isPaused(queue.name),
        deadLetterQueue: queue.deadLetterQueue,
        isDeadLetterQueue: queue.isDeadLetterQueue,
        autoDelete: queue.autoDelete,
      });
    }
    return infos;
  }

  /**
   * Remove the ready messages of `queue` (RabbitMQ's purge) and resolve to
   * how many; its delayed messages, in the delay ladder, are dropped when
   * they come due (not counted: nothing can count them by destination).
   */
  async purge(queue: string): Promise<number> {
    this.host.open("purge a queue");
    checkName("queue name", queue);
    await this.host.whenReady("purge a queue");
    const at = Date.now();
    const { messageCount } = await this.host.link.withChannel("purge a queue", async (channel) => {
      await channel.checkQueue(queue).catch((error) => {
        throw mapAmqpError(error, "queue.declare", { kind: "queue", name: queue });
      });
      return channel.purgeQueue(queue);
    });
    await this.host.registry.purge(queue, at);
    return messageCount;
  }

  async pause(queue: string): Promise<void> {
    await this.setPaused("pause a queue", queue, true);
  }

  async resume(queue: string): Promise<void> {
    await this.setPaused("resume a queue", queue, false);
  }

  private async setPaused(operation: string, queue: string, paused: boolean): Promise<void> {
    this.host.open(operation);
    checkName("queue name", queue);
    await this.host.whenReady(operation);
    await this.host.ensureQueue(queue);
    await this.host.registry.setPaused(queue, paused);
  }

  requeueDeadLetters(queue: string, ids?: readonly string[]): Promise<number> {
    return this.takeDeadLetters("requeue dead letters", queue, ids, (letter) => this.host.requeue(letter));
  }

  discardDeadLetters(queue: string, ids?: readonly string[]): Promise<number> {
    return this.takeDeadLetters("discard dead letters", queue, ids, async () => {});
  }

  /**
   * Take the dead letters `ids` selects (all without it) out of the
   * dead-letter queue of `queue` (or `queue` itself, if it is one): each is
   * fetched, handed to `move` and acknowledged once `move` resolves; the
   * others go back when the fetching channel closes. Dead letters a
   * consumer holds are not fetched.
   */
  private async takeDeadLetters(
    operation: string,
    queue: string,
    ids: readonly string[] | undefined,
    move: (letter: DeadLetter) => Promise<void>,
  ): Promise<number> {
    this.host.open(operation);
    checkName("queue name", queue);
    if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== "string")))
      throw new InvalidArgumentError({ argument: "ids", reason: "must be an array of message id strings" });
    await this.host.whenReady(operation);
    await this.host.link
      .withChannel(operation, (channel) => channel.checkQueue(queue))
      .catch((error) => {
        throw mapAmqpError(error, "queue.declare", { kind: "queue", name: queue });
      });
    const deadLetterQueue = this.host.deadLetterQueueOf(queue);
    if (deadLetterQueue === "" || !(await this.host.exists(deadLetterQueue))) return 0;
    const wanted = ids === undefined ? undefined : new Set(ids);
    return this.host.link.withChannel(operation, async (channel) => {
      let taken = 0;
      for (;;) {
        const message = await channel.get(deadLetterQueue, { noAck: false });
        if (message === false) return taken;
        const letter = deadLetterOf(message);
        if (wanted !== undefined && !wanted.has(letter.envelope.id)) continue;
        await move(letter);
        channel.ack(message);
        taken++;
      }
    });
  }
}
