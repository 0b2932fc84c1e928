// Receiving the event stream: each subscriber has a queue of its own (auto-
// delete, so it goes when the subscriber does) bound to the events exchange.
// It sees the events published from the moment it is subscribed, in the
// order each process sent them.
import { randomUUID } from "node:crypto";
import { Decoder } from "@msgpack/msgpack";
import type { Delivery } from "../../broker/envelope.ts";
import type { Consumer, Transport } from "../../broker/transport.ts";
import { EVENTS_EXCHANGE, EVENT_TYPES, isTaskEvent, type CelerityEvent, type EventType } from "./event-types.ts";
import { fromWire } from "./event-wire.ts";

/**
 * Which events a subscriber receives.
 *
 * @example
 * await app.events.subscribe((event) => console.error(event.type, event.hostname), { types: ["task-failed", "task-retried"], tasks: "fetch" });
 */
export interface SubscribeOptions {
  /** Only events of these types. Default: every type. */
  readonly types?: EventType | readonly EventType[];
  /** Only task events of these tasks (worker events still pass unless `types` leaves them out). Default: every task. */
  readonly tasks?: string | readonly string[];
}

/**
 * A running subscription.
 *
 * @example
 * const subscription = await app.events.subscribe((event) => console.log(event.type));
 * await subscription.close(); // its queue, subscription.queue, is deleted
 */
export interface EventSubscription {
  /** The subscriber's own queue. */
  readonly queue: string;
  /** Stop receiving; the queue is deleted. */
  close(): Promise<void>;
}

/**
 * An event as a subscriber receives it: with the time it arrived (seconds, as `timestamp`).
 *
 * @example
 * await app.events.subscribe((event) => console.log(event.type, `${(event.local_received - event.timestamp).toFixed(3)} s in transit`));
 */
export type ReceivedEvent = CelerityEvent & { readonly local_received: number };

/**
 * What `app.events.subscribe` calls with each event; a handler that throws or rejects is logged and the stream goes on.
 *
 * @example
 * const onFailure: EventHandler = async (event) => {
 *   if (event.type === "task-failed") await notifyOnCall(event.name, event.exception);
 * };
 * await app.events.subscribe(onFailure, { types: "task-failed" });
 */
export type EventHandler = (event: ReceivedEvent) => void | Promise<void>;

const PREFETCH = 64;

const asSet = <T extends string>(
  value: T | readonly T[] | undefined,
  what: string,
  known?: readonly string[],
): ReadonlySet<string> | undefined => {
  if (value === undefined) return undefined;
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || list.some((item) => typeof item !== "string"))
    throw new TypeError(`events.subscribe: ${what} must be a string or an array of strings`);
  for (const item of list) {
    if (known !== undefined && !known.includes(item))
      throw new TypeError(`events.subscribe: unknown event type '${item}'; the types are ${known.join(", ")}`);
  }
  return new Set(list);
};

/**
 * Subscribe `handler` to the events published on `transport`; resolves once
 * the subscriber's queue is bound, so every event published after it is seen.
 * A handler that throws (or rejects) is reported to `log`; the stream goes on.
 *
 * @example
 * const subscription = await subscribeEvents(app.broker, (e) => console.log(e.type, e.hostname), { types: "task-failed" }, console.error);
 * await subscription.close();
 */
export const subscribeEvents = async (
  transport: Transport,
  handler: EventHandler,
  options: SubscribeOptions,
  log: (message: string) => void,
): Promise<EventSubscription> => {
  if (typeof handler !== "function") throw new TypeError("events.subscribe: the handler must be a function");
  const types = asSet(options.types, "types", EVENT_TYPES);
  const tasks = asSet(options.tasks, "tasks");
  const queue = `${EVENTS_EXCHANGE}.${randomUUID()}`;
  await transport.declareExchange(EVENTS_EXCHANGE, "fanout");
  await transport.declareQueue(queue, { autoDelete: true });
  await transport.bindQueue(queue, EVENTS_EXCHANGE, "");
  const decoder = new Decoder();
  const wanted = (event: CelerityEvent): boolean =>
    (types === undefined || types.has(event.type)) &&
    (tasks === undefined || !isTaskEvent(event) || tasks.has(event.name));
  const deliver = (event: ReceivedEvent): void => {
    try {
      const done = handler(event);
      if (done instanceof Promise)
        done.catch((error: unknown) =>
          log(`events: a subscriber's handler failed on ${event.type}: ${messageOf(error)}`),
        );
    } catch (error) {
      log(`events: a subscriber's handler failed on ${event.type}: ${messageOf(error)}`);
    }
  };
  let consumer: Consumer | undefined;
  const early: Delivery[] = [];
  const receive = (delivery: Delivery): void => {
    if (consumer === undefined) return void early.push(delivery);
    consumer.ack(delivery.deliveryTag);
    let batch: CelerityEvent[];
    try {
      batch = fromWire(decoder.decode(delivery.envelope.body));
    } catch (error) {
      return log(`events: dropped an unreadable batch ${delivery.envelope.id}: ${messageOf(error)}`);
    }
    const local_received = Date.now() / 1000;
    for (const event of batch) {
      if (wanted(event)) {
        (event as { local_received?: number }).local_received = local_received;
        deliver(event as ReceivedEvent);
      }
    }
  };
  consumer = await transport.consume(queue, receive, { prefetch: PREFETCH });
  for (const delivery of early.splice(0)) receive(delivery);
  const attached = consumer;
  return { queue, close: () => attached.cancel() };
};

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
