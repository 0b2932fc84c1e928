/**
 * The `amqp://` case of choosing a broker by url, for `createApp({ broker })`
 * and `celerity worker --broker`.
 *
 * @module
 */
import type { AmqpTransportOptions } from "./amqp-options.ts";
import { AmqpTransport } from "./amqp-transport.ts";

export { isAmqpUrl } from "./amqp-url.ts";

/**
 * A RabbitMQ transport for `url`, connecting in the background (operations
 * wait for the connection; it reconnects by itself).
 *
 * @example
 * const broker = connectAmqp("amqp://guest:guest@127.0.0.1:5672/%2F");
 */
export const connectAmqp = (url: string, options: AmqpTransportOptions = {}): AmqpTransport =>
  AmqpTransport.create(url, options);
