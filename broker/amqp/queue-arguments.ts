/**
 * The arguments each kind of queue is declared with, for each RabbitMQ queue
 * type. Classic queues order by priority (0-9, as the envelope does) and
 * live on one node; quorum queues are replicated by Raft across a cluster
 * and count deliveries themselves, dead-lettering a message past its
 * delivery limit (at least once) to the queue's dead-letter queue, but do
 * not order by priority on RabbitMQ 3.x.
 *
 * @module
 */

/**
 * "classic": priorities, one node. "quorum": replicated, no priorities.
 *
 * @example
 * const broker = await AmqpTransport.connect(url, { queueType: "quorum" satisfies QueueType });
 */
export type QueueType = "classic" | "quorum";

/** A work queue's arguments: `maxDeliveries` is enforced by RabbitMQ itself on a quorum queue. */
export const workQueueArguments = (
  type: QueueType,
  deadLetterQueue: string,
  maxDeliveries: number,
): Record<string, unknown> =>
  type === "classic"
    ? { "x-max-priority": 9 }
    : {
        "x-queue-type": "quorum",
        // RabbitMQ dead-letters once the count of returned deliveries exceeds the limit: after limit + 1 deliveries.
        "x-delivery-limit": maxDeliveries - 1,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": deadLetterQueue,
        "x-dead-letter-strategy": "at-least-once",
        // At-least-once dead-lettering requires refusing publishes when full rather than dropping the oldest.
        "x-overflow": "reject-publish",
      };

/** A dead-letter queue's arguments (the same type as the queues it serves). */
export const deadLetterQueueArguments = (type: QueueType): Record<string, unknown> =>
  type === "classic" ? { "x-max-priority": 9 } : { "x-queue-type": "quorum" };

/** A delay ladder level's arguments: hold each message `ttlMs`, then dead-letter it to `next`. */
export const ladderQueueArguments = (type: QueueType, ttlMs: number, next: string): Record<string, unknown> =>
  type === "classic"
    ? { "x-message-ttl": ttlMs, "x-dead-letter-exchange": next }
    : {
        "x-queue-type": "quorum",
        "x-message-ttl": ttlMs,
        "x-dead-letter-exchange": next,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
      };
