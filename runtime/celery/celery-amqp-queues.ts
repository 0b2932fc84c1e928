// Celery's queues on RabbitMQ (the CeleryBroker of an app or worker on amqp://): declared,
// published to and consumed exactly as Celery does, so Python workers share them.
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { CeleryMessageError } from "./celery-errors.ts";
import type { CeleryBroker, CeleryConsumption, CeleryInbound } from "./celery-broker.ts";
import { celeryBody, celeryHeaders, type CeleryTaskMessage } from "./celery-message.ts";
import type { KombuDelivery } from "./kombu-redis-envelope.ts";

/**
 * Celery's queues on RabbitMQ, as Celery declares and uses them: a durable
 * queue with no arguments, a direct exchange of the same name bound by the
 * queue's name, messages published persistent to the default exchange with
 * Celery's headers as AMQP headers and the raw JSON body.
 */
export class AmqpCeleryQueues implements CeleryBroker {
  private connection: Promise<ChannelModel> | undefined;
  private publisher: Promise<ConfirmChannel> | undefined;
  private readonly declared = new Set<string>();

  constructor(private readonly url: string) {}

  private connect(): Promise<ChannelModel> {
    this.connection ??= import("amqplib").then((amqp) => amqp.connect(this.url));
    return this.connection;
  }

  private channel(): Promise<ConfirmChannel> {
    this.publisher ??= this.connect().then((connection) => connection.createConfirmChannel());
    return this.publisher;
  }

  /** Declare `queue` exactly as Celery does: any other arguments make RabbitMQ refuse one side's declaration. */
  private async declare(channel: ConfirmChannel, queue: string): Promise<void> {
    if (this.declared.has(queue)) return;
    await channel.assertExchange(queue, "direct", { durable: true, autoDelete: false });
    await channel.assertQueue(queue, { durable: true, exclusive: false, autoDelete: false });
    await channel.bindQueue(queue, queue, queue);
    this.declared.add(queue);
  }

  async publish(message: CeleryTaskMessage): Promise<void> {
    const channel = await this.channel();
    await this.declare(channel, message.queue);
    await new Promise<void>((resolve, reject) => {
      channel.publish(
        "",
        message.queue,
        Buffer.from(celeryBody(message), "utf8"),
        {
          contentType: "application/json",
          contentEncoding: "utf-8",
          persistent: true,
          priority: Math.max(0, Math.min(255, message.priority)),
          correlationId: message.id,
          replyTo: "",
          headers: celeryHeaders(message),
          mandatory: true,
        },
        (error) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve()),
      );
    });
  }

  async deadLetter(queue: string, raw: string, reason: string, now: number): Promise<void> {
    const channel = await this.channel();
    const dead = `${queue}.dead-letter`;
    await channel.assertQueue(dead, { durable: true });
    await new Promise<void>((resolve, reject) => {
      channel.sendToQueue(
        dead,
        Buffer.from(raw, "utf8"),
        { persistent: true, headers: { reason, at: new Date(now).toISOString() } },
        (error) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve()),
      );
    });
  }

  async consume(
    queues: readonly string[],
    prefetch: number,
    onMessage: (inbound: CeleryInbound) => void,
  ): Promise<CeleryConsumption> {
    const connection = await this.connect();
    const channel = await connection.createConfirmChannel();
    for (const queue of queues) await this.declare(channel, queue);
    await channel.prefetch(prefetch);
    const tags: string[] = [];
    for (const queue of queues) {
      const { consumerTag } = await channel.consume(queue, (received) => {
        if (received === null) return;
        let settled = false;
        onMessage({
          queue,
          raw: received.content.toString("utf8"),
          delivery: readDelivery(received),
          ack: async () => {
            if (settled) return;
            settled = true;
            channel.ack(received);
          },
          abandon: async () => {
            if (settled) return;
            settled = true;
            channel.nack(received, false, true);
          },
        });
      });
      tags.push(consumerTag);
    }
    return {
      stop: async () => {
        for (const tag of tags) await channel.cancel(tag).catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    if (this.connection === undefined) return;
    const connection = await this.connection.catch(() => undefined);
    await connection?.close().catch(() => undefined);
  }
}

/** Celery's message as RabbitMQ delivers it: properties and headers, the body as raw JSON. */
const readDelivery = (received: ConsumeMessage): KombuDelivery | CeleryMessageError => {
  const headers = (received.properties.headers ?? {}) as Record<string, unknown>;
  const id = typeof headers.id === "string" ? headers.id : undefined;
  const task = typeof headers.task === "string" ? headers.task : undefined;
  const fail = (reason: string) =>
    new CeleryMessageError({ reason, ...(id !== undefined ? { id } : {}), ...(task !== undefined ? { task } : {}) });
  const contentType = received.properties.contentType as unknown;
  if (contentType !== "application/json")
    return fail(
      `content type ${JSON.stringify(contentType ?? null)} is not supported; send application/json (Celery's task_serializer='json')`,
    );
  if (headers.compression !== undefined && headers.compression !== null)
    return fail(`compression ${JSON.stringify(headers.compression)} is not supported on RabbitMQ`);
  let body: unknown;
  try {
    body = JSON.parse(received.content.toString("utf8"));
  } catch (error) {
    return fail(`the body is not JSON: ${(error as Error).message}`);
  }
  return {
    deliveryTag: String(received.fields.deliveryTag),
    headers,
    body,
    priority: typeof received.properties.priority === "number" ? received.properties.priority : 0,
    routingKey: received.fields.routingKey,
    exchange: received.fields.exchange,
  };
};
