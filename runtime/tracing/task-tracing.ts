/**
 * OpenTelemetry tracing of tasks, through `@opentelemetry/api` only: a
 * `publish <task>` span (kind PRODUCER) around each send, whose context
 * travels to the worker in the message's headers (`traceparent`,
 * `tracestate`, whatever the registered propagator writes), and a
 * `run <task>` span (kind CONSUMER) around each run, a child of that
 * context. The application registers an SDK (a tracer provider and a
 * propagator) or does not; without one nothing here makes a span or adds a
 * header, and the per-task cost is one look-up (`tracingRegistered`).
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  type Context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import type { Envelope } from "../../broker/envelope.ts";
import type { TaskMessage } from "../task-message.ts";

/** The instrumentation scope spans are reported under. */
export const TRACER_NAME = "celerity";

/**
 * Where every copy of `@opentelemetry/api` of major version 1 keeps what an
 * SDK registered: the one place all copies share, so reading it tells,
 * without a call through the API (~75 ns a time, twice a task), whether a
 * tracer provider or a propagator was ever set. Its `trace` and
 * `propagation` slots exist only once one was.
 */
const API_GLOBAL = Symbol.for("opentelemetry.js.api.1");

interface ApiGlobal {
  readonly trace?: unknown;
  readonly propagation?: unknown;
}

/** Whether an SDK registered a tracer provider or a propagator: without either, tasks are not traced. */
export const tracingRegistered = (): boolean => {
  const registered = (globalThis as { [API_GLOBAL]?: ApiGlobal })[API_GLOBAL];
  return registered !== undefined && (registered.trace !== undefined || registered.propagation !== undefined);
};

/** Asked for each span (only while tracing): a tracer kept from before `trace.disable()` would feed the provider that was replaced. */
const tracerOf = (): Tracer => trace.getTracer(TRACER_NAME);

/** Reads string headers only: a propagator's fields are strings, and a number in a header of that name is not one of them. */
const headerGetter: TextMapGetter<Readonly<Record<string, unknown>>> = {
  keys: (headers) => Object.keys(headers),
  get: (headers, key) => {
    const value = headers[key];
    return typeof value === "string" ? value : undefined;
  },
};

/** What a span needs to know of a task's message, in either protocol. */
export interface TracedTask {
  readonly id: string;
  readonly task: string;
  readonly retries: number;
}

const taskAttributes = (message: TracedTask, queue: string, operation: "publish" | "process") => ({
  "messaging.system": "celerity",
  "messaging.operation.type": operation,
  "messaging.destination.name": queue,
  "messaging.message.id": message.id,
  "celerity.task.name": message.task,
  "celerity.task.id": message.id,
  "celerity.task.retries": message.retries,
});

/** A send being traced: the headers that carry its span's context (what the propagator writes), and the span's end. */
export interface PublishSpan {
  readonly headers: Readonly<Record<string, string>>;
  end(error?: unknown): void;
}

/**
 * Start the `publish <task>` span of a message sent to `destination` (a
 * child of the caller's active span, if any), with the headers that carry
 * its context. Undefined when tracing is off.
 */
export const startPublishSpan = (message: TracedTask, destination: string): PublishSpan | undefined => {
  if (!tracingRegistered()) return undefined;
  const span = tracerOf().startSpan(`publish ${message.task}`, {
    kind: SpanKind.PRODUCER,
    attributes: taskAttributes(message, destination, "publish"),
  });
  const headers: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), headers);
  return { headers, end: (error) => endSpan(span, error) };
};

/**
 * A send being traced: its span, and the envelope to publish, which carries
 * the span's context in its headers.
 */
export interface PublishTrace {
  readonly envelope: Envelope;
  end(error?: unknown): void;
}

/**
 * Start the `publish <task>` span of `message` and write its context into a
 * copy of the envelope's headers. Undefined when tracing is off: the
 * envelope goes as it is.
 */
export const tracePublish = (message: TaskMessage, envelope: Envelope): PublishTrace | undefined => {
  const span = startPublishSpan(message, envelope.exchange === "" ? envelope.routingKey : envelope.exchange);
  if (span === undefined) return undefined;
  return { envelope: { ...envelope, headers: { ...envelope.headers, ...span.headers } }, end: span.end };
};

/**
 * The trace headers among a received message's `headers` (the fields of the
 * registered propagator that hold strings), to keep with the message;
 * undefined when tracing is off or there are none.
 */
export const traceHeadersOf = (headers: Readonly<Record<string, unknown>>): Record<string, string> | undefined => {
  if (!tracingRegistered()) return undefined;
  let found: Record<string, string> | undefined;
  for (const field of propagation.fields()) {
    const value = headers[field];
    if (typeof value === "string") (found ??= {})[field] = value;
  }
  return found;
};

/** A run being traced: the context its handler runs in (the span active), and the end of the span. */
export interface RunTrace {
  readonly context: Context;
  /** End the span with the run's outcome (succeeded, failed, retried, revoked): `error` marks it failed, with the exception recorded. */
  end(outcome: string, error?: unknown): void;
}

/**
 * Start the `run <task>` span of a message taken from `queue`, a child of
 * the context its headers carry (a root span when they carry none).
 * Undefined when tracing is off.
 */
export const traceRun = (
  message: TracedTask,
  headers: Readonly<Record<string, unknown>>,
  queue: string,
): RunTrace | undefined => {
  if (!tracingRegistered()) return undefined;
  const parent = propagation.extract(ROOT_CONTEXT, headers, headerGetter);
  const span = tracerOf().startSpan(
    `run ${message.task}`,
    { kind: SpanKind.CONSUMER, attributes: taskAttributes(message, queue, "process") },
    parent,
  );
  return {
    context: trace.setSpan(parent, span),
    end: (outcome, error) => {
      span.setAttribute("celerity.task.outcome", outcome);
      // A value that could not be stored fails a run whose handler returned.
      endSpan(span, error === undefined && outcome === "failed" ? "its result could not be stored" : error);
    },
  };
};

const endSpan = (span: Span, error: unknown): void => {
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    });
  }
  span.end();
};
