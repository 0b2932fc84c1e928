/**
 * celerity/amqp: celerity on RabbitMQ. `createApp({ broker: "amqp://…" })`
 * needs nothing from here; import the transport to set its options
 * (queue type, prefix, timeouts) or to match its errors. See docs/scaling.md.
 *
 * @example
 * import { createApp } from "celerity";
 * import { AmqpTransport } from "celerity/amqp";
 *
 * const broker = await AmqpTransport.connect("amqp://guest:guest@127.0.0.1:5672/%2F", { queueType: "quorum" });
 * const app = createApp({ broker, results });
 *
 * @module
 */
export { AmqpTransport } from "../broker/amqp/amqp-transport.ts";
export { connectAmqp, isAmqpUrl } from "../broker/amqp/connect-amqp.ts";
export type { AmqpTransportOptions } from "../broker/amqp/amqp-options.ts";
export type { QueueType } from "../broker/amqp/queue-arguments.ts";
export { AmqpConnectionError, AmqpRefusedError } from "../broker/amqp/amqp-errors.ts";
