/**
 * Publishing with publisher confirms: a publish resolves once RabbitMQ has
 * taken responsibility for the message (written it, for a persistent message
 * on a durable queue) and rejects when RabbitMQ refused it. A mandatory
 * message that no queue receives comes back as a `basic.return`, which
 * RabbitMQ sends before the confirm of the same message: the confirm then
 * rejects with UnroutableError. A publish whose channel or connection is lost
 * before its confirm is sent again on the next one (at least once: a message
 * RabbitMQ had taken but not yet confirmed may then be queued twice, which
 * the runtime already tolerates).
 *
 * @module
 */
import type { ConfirmChannel, Message, Options } from "amqplib";
import { BrokerClosedError, UnroutableError } from "../errors.ts";
import { AmqpConnectionError, mapAmqpError, replyCode, type Subject } from "./amqp-errors.ts";
import type { AmqpLink } from "./amqp-link.ts";

const MAX_ATTEMPTS_PER_CONNECTION = 5;

/** Returned mandatory messages of one channel, by message id, waiting for their confirm. */
const returnsOf = new WeakMap<ConfirmChannel, Map<string, number>>();

export class ConfirmedPublisher {
  constructor(private readonly link: AmqpLink) {}

  /** Publish and resolve on RabbitMQ's confirm; `subject` names what a refusal was about. */
  send(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
    subject: Subject,
  ): Promise<void> {
    const channel = this.link.openPublisher;
    // The common case, kept free of awaits: a channel is open, and the confirm settles the publish.
    if (channel !== undefined) {
      const generation = this.link.generation;
      return this.sendOn(channel, exchange, routingKey, content, options).catch((error: unknown) =>
        this.retry(error, 1, generation, exchange, routingKey, content, options, subject),
      );
    }
    return this.retry(undefined, 0, this.link.generation, exchange, routingKey, content, options, subject);
  }

  /** After `error` on attempt `attempt` (none yet when 0): give up, or send again once a channel is open. */
  private async retry(
    error: unknown,
    attempt: number,
    generation: number,
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
    subject: Subject,
  ): Promise<void> {
    for (;;) {
      if (attempt > 0) {
        if (
          error instanceof UnroutableError ||
          error instanceof BrokerClosedError ||
          error instanceof AmqpConnectionError
        )
          throw error;
        // A refusal (a code from the server) is the caller's to know; a lost channel or connection is retried.
        if (replyCode(error) !== undefined && !lostConnection(error)) throw mapAmqpError(error, "publish", subject);
        // The same connection losing channel after channel is not a cut that a retry outlives.
        if (generation === this.link.generation && attempt >= MAX_ATTEMPTS_PER_CONNECTION)
          throw mapAmqpError(error, "publish", subject);
      }
      attempt++;
      try {
        // Opening the channel can fail too, when the connection drops meanwhile: that is retried like a lost publish.
        const channel = await this.link.publishChannel();
        generation = this.link.generation;
        return await this.sendOn(channel, exchange, routingKey, content, options);
      } catch (failure) {
        error = failure;
      }
    }
  }

  private sendOn(
    channel: ConfirmChannel,
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
  ): Promise<void> {
    let returns = returnsOf.get(channel);
    if (returns === undefined) {
      const map = new Map<string, number>();
      returnsOf.set(channel, (returns = map));
      channel.on("return", (message: Message) => {
        const id = message.properties.messageId as string | undefined;
        if (id !== undefined) map.set(id, (map.get(id) ?? 0) + 1);
      });
    }
    const id = options.messageId;
    const tracked = returns;
    return new Promise<void>((resolve, reject) => {
      channel.publish(exchange, routingKey, content, options, (error) => {
        if (error !== null && error !== undefined) return reject(error);
        const returned = id === undefined ? 0 : (tracked.get(id) ?? 0);
        if (returned > 0 && options.mandatory === true) {
          if (returned === 1) tracked.delete(id as string);
          else tracked.set(id as string, returned - 1);
          return reject(new UnroutableError({ exchange, routingKey }));
        }
        resolve();
      });
    });
  }
}

/** Codes of a connection that went away (rather than a refusal of this message): 320 connection forced, 541 internal error, 501 frame error. */
const lostConnection = (error: unknown): boolean => {
  const code = replyCode(error);
  return code === 320 || code === 541 || code === 501 || code === 505;
};
