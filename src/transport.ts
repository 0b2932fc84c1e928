/**
 * celerity/transport: the contract between the runtime and a broker, for
 * writing a transport of your own or using one directly. A transport moves
 * opaque envelopes; `createApp({ broker })` takes any `Transport`. Its tests
 * come from `celerity/transport/conformance`.
 *
 * @example
 * import { createEmbeddedBroker, type Transport } from "celerity/transport";
 *
 * const broker: Transport = createEmbeddedBroker();
 * await broker.declareQueue("jobs");
 * const consumer = await broker.consume("jobs", (delivery) => consumer.ack(delivery.deliveryTag), { prefetch: 10 });
 * await broker.publish({ id: "1", exchange: "", routingKey: "jobs", priority: 0, headers: {}, body: new Uint8Array([1]) });
 * await broker.close();
 *
 * @module
 */
export type {
  Transport,
  Consumer,
  DeliveryHandler,
  ExchangeType,
  QueueOptions,
  ConsumeOptions,
  PublishOptions,
  QueueStats,
  RevocationOptions,
} from "../broker/transport.ts";
export {
  MIN_PRIORITY,
  MAX_PRIORITY,
  type Envelope,
  type Delivery,
  type DeadLetter,
  type HeaderValue,
} from "../broker/envelope.ts";
export { Codec, CodecError, DecodeError } from "../broker/codec.ts";
export { systemClock, type Clock, type ClockTimer } from "../broker/clock.ts";
export {
  BrokerClosedError,
  InvalidArgumentError,
  ExchangeNotFoundError,
  QueueNotFoundError,
  DeclarationConflictError,
  UnknownDeliveryError,
  UnroutableError,
} from "../broker/errors.ts";
export {
  EmbeddedBroker,
  createEmbeddedBroker,
  type EmbeddedBrokerOptions,
  type BrokerTotals,
} from "../broker/embedded/embedded-broker.ts";
export { queueAdminOf, type QueueAdmin, type QueueInfo } from "../broker/queue-admin.ts";
