/**
 * Queue depths at scrape time: every queue the broker lists (through its
 * queue management: embedded broker, node, Redis, RabbitMQ), or, on a
 * transport that manages no queues, the queues named in the options read
 * one by one with `stats`. Auto-delete queues (each event
 * subscriber's, each control reply's) come and go with a random name: they
 * are left out, unless named.
 */
import type { QueueStats, Transport } from "../../broker/transport.ts";
import { queueAdminOf } from "../../broker/queue-admin.ts";
import { DEFAULT_QUEUE } from "../task-message.ts";

/** A queue's depth; a count the broker cannot tell by queue (RabbitMQ's delayed and unacked) is undefined. */
export interface QueueDepth extends Omit<QueueStats, "delayed" | "unacked"> {
  readonly name: string;
  readonly delayed: number | undefined;
  readonly unacked: number | undefined;
}

/** The depths of the queues to report: `named` only when given, else every lasting queue (or the default queue, without queue management). */
export const sampleQueueDepths = async (
  transport: Transport,
  named: readonly string[] | undefined,
): Promise<readonly QueueDepth[]> => {
  const admin = queueAdminOf(transport);
  if (admin !== undefined) {
    const listed = await admin.listQueues();
    if (named === undefined) return listed.filter((queue) => !queue.autoDelete);
    const wanted = new Set(named);
    return listed.filter((queue) => wanted.has(queue.name));
  }
  const queues = named ?? [DEFAULT_QUEUE];
  return Promise.all(queues.map(async (name) => ({ name, ...(await transport.stats(name)) })));
};
