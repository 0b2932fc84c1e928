/**
 * OpenTelemetry on Celery's protocol: a CeleryBroker whose publishes are
 * traced (a `publish <task>` span, its context written into the message's
 * headers, where Python Celery's OpenTelemetry instrumentation finds it as
 * well), for the app and the worker to send through. Without an SDK it
 * publishes the message as it is.
 */
import type { CeleryBroker } from "./celery-broker.ts";
import { startPublishSpan } from "../tracing/task-tracing.ts";

/** `broker`, with each publish traced when an OpenTelemetry SDK is registered. */
export const tracedCeleryBroker = (broker: CeleryBroker): CeleryBroker => ({
  async publish(message) {
    const span = startPublishSpan(message, message.queue);
    if (span === undefined) return broker.publish(message);
    try {
      await broker.publish({ ...message, trace: span.headers });
    } catch (error) {
      span.end(error);
      throw error;
    }
    span.end();
  },
  consume: (queues, prefetch, onMessage) => broker.consume(queues, prefetch, onMessage),
  deadLetter: (queue, raw, reason, now) => broker.deadLetter(queue, raw, reason, now),
  close: () => broker.close(),
});
