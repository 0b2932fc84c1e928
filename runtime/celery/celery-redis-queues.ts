// Celery's queues on Redis (the CeleryBroker of an app or worker on redis://): kombu's
// lists, with what dead workers left unacknowledged restored periodically.
import type { Redis } from "ioredis";
import { CeleryMessageError } from "./celery-errors.ts";
import type { CeleryBroker, CeleryConsumption, CeleryInbound } from "./celery-broker.ts";
import type { CeleryTaskMessage } from "./celery-message.ts";
import type { CeleryRedis } from "./celery-redis.ts";
import { decodeKombuEnvelope, priorityLists, queueOfList } from "./kombu-redis-envelope.ts";

/** How often a worker looks for messages to restore (kombu looks every 10 s, and scans every tenth time). */
const RESTORE_INTERVAL_MS = 60_000;

/**
 * Celery's queues on Redis, as kombu keeps them: LPUSH to send, BRPOP
 * across a queue's priority sub-lists to receive, and the `unacked`
 * bookkeeping while a message is worked on.
 */
export class RedisCeleryQueues implements CeleryBroker {
  constructor(
    private readonly redis: CeleryRedis,
    private readonly log: (message: string) => void,
    private readonly now: () => number,
    /** Seconds before an unacknowledged message is put back on its queue: kombu's `visibility_timeout`. */
    private readonly visibilityTimeout: number,
  ) {}

  /** Restore what dead workers left unacknowledged; a failure is logged and tried again on the next round. */
  private restore(): Promise<void> {
    return this.redis.restoreUnacked(this.visibilityTimeout, this.now()).then(
      (count) => {
        if (count > 0)
          this.log(
            `celery worker: put ${count} unacknowledged message(s) older than ${this.visibilityTimeout} s back on their queues`,
          );
      },
      (error: unknown) =>
        this.log(`celery worker: restoring unacknowledged messages failed: ${(error as Error).message}`),
    );
  }

  publish(message: CeleryTaskMessage): Promise<void> {
    return this.redis.publish(message);
  }

  deadLetter(queue: string, raw: string, reason: string, now: number): Promise<void> {
    return this.redis.deadLetter(queue, raw, reason, now);
  }

  async consume(
    queues: readonly string[],
    prefetch: number,
    onMessage: (inbound: CeleryInbound) => void,
  ): Promise<CeleryConsumption> {
    for (const queue of queues) await this.redis.bind(queue);
    const connection = this.redis.blockingConnection();
    await connection.ping();
    await this.restore();
    const restoring = setInterval(() => void this.restore(), RESTORE_INTERVAL_MS);
    restoring.unref();
    const state = { stopping: false, outstanding: 0, freed: undefined as (() => void) | undefined };
    const loop = this.pop(connection, queues.flatMap(priorityLists), prefetch, state, onMessage);
    return {
      stop: async () => {
        clearInterval(restoring);
        state.stopping = true;
        state.freed?.();
        connection.disconnect();
        await loop;
      },
    };
  }

  private async pop(
    connection: Redis,
    lists: readonly string[],
    prefetch: number,
    state: { stopping: boolean; outstanding: number; freed: (() => void) | undefined },
    onMessage: (inbound: CeleryInbound) => void,
  ): Promise<void> {
    while (!state.stopping) {
      if (state.outstanding >= prefetch) {
        await new Promise<void>((resolve) => (state.freed = resolve));
        continue;
      }
      let popped: [string, string] | null;
      try {
        popped = (await connection.brpop(...lists, 1)) as [string, string] | null;
      } catch (error) {
        if (state.stopping) return;
        this.log(`celery worker: popping from ${lists.join(", ")} failed: ${(error as Error).message}; retrying`);
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      if (popped === null) continue;
      const [list, raw] = popped;
      let delivery: CeleryInbound["delivery"];
      try {
        delivery = decodeKombuEnvelope(raw);
        await this.redis.markUnacked(delivery.deliveryTag, raw, delivery.exchange, delivery.routingKey, this.now());
      } catch (error) {
        if (!(error instanceof CeleryMessageError)) throw error;
        delivery = error;
      }
      state.outstanding++;
      const tag = delivery instanceof CeleryMessageError ? undefined : delivery.deliveryTag;
      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        state.outstanding--;
        const freed = state.freed;
        state.freed = undefined;
        freed?.();
        return true;
      };
      onMessage({
        queue: queueOfList(list),
        raw,
        delivery,
        ack: async () => {
          if (settle() && tag !== undefined) await this.redis.ack(tag);
        },
        // It stays in kombu's `unacked` hash, from which a worker restores it after the visibility timeout.
        abandon: async () => void settle(),
      });
    }
  }

  async close(): Promise<void> {}
}
