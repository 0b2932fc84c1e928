import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { Encoder } from "@msgpack/msgpack";
import type { Transport } from "../../broker/transport.ts";
import { EVENTS_EXCHANGE, type CelerityEvent, type EventFields } from "./event-types.ts";
import { CLOCK_AT, EVENT_WIRE_VERSION, TIMESTAMP_AT, toWire, type WireEvent } from "./event-wire.ts";

/**
 * Publishes events to the events exchange. Events sent in one event-loop
 * turn go out together, in one envelope (see event-wire.ts for its body): a worker emits three events per task, and one publish per event
 * would cost more than running a small task. A batch is also flushed once it
 * holds `maxBatch` events, and on `flush()` (the app flushes a task-sent
 * event before the task's own message, so no worker's event about the task
 * can overtake it).
 *
 * With nobody subscribed, the exchange routes a batch to no queue and the
 * broker drops it. One dispatcher serves an app and its workers, so the
 * events of one process keep their order.
 */
export const EVENTS_HEADER = "celerity-events";

const DEFAULT_MAX_BATCH = 512;

/** The `hostname` of a process that is not a worker: Celery's form, `<pid>@<host>`. */
export const processName = (): string => `${process.pid}@${hostname()}`;

export class EventDispatcher {
  private readonly utcoffset = -new Date().getTimezoneOffset() / 60;
  private batch: unknown[] = this.newBatch();
  private flushScheduled = false;
  private clock = 0;
  private readonly encoder = new Encoder({ ignoreUndefined: true });
  private declared = false;
  private readonly declaring: Promise<void>;
  private failures = 0;
  private closed = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly transport: Transport,
    private readonly log: (message: string) => void,
    private readonly maxBatch = DEFAULT_MAX_BATCH,
  ) {
    this.declaring = transport.declareExchange(EVENTS_EXCHANGE, "fanout").then(
      () => {
        this.declared = true;
        this.flush();
      },
      (error: unknown) => this.log(`events: could not declare the '${EVENTS_EXCHANGE}' exchange, so no event is sent: ${messageOf(error)}`),
    );
  }

  /** Resolves once the exchange is declared (at once afterwards): events sent before go out then. */
  get ready(): Promise<void> {
    return this.declaring;
  }

  private newBatch(): unknown[] {
    return [EVENT_WIRE_VERSION, process.pid, this.utcoffset];
  }

  /** Queue an event for the next batch, sent by `hostname`; the dispatcher stamps its time and clock. */
  send(hostname: string, fields: EventFields<CelerityEvent>): void {
    this.sendWire(toWire(hostname, fields as unknown as { type: CelerityEvent["type"] } & Record<string, unknown>));
  }

  /** Queue an event already in its wire form (event-wire.ts): what a worker sends per task. */
  sendWire(event: WireEvent): void {
    if (this.closed) return;
    event[TIMESTAMP_AT] = Date.now() / 1000;
    event[CLOCK_AT] = ++this.clock;
    this.batch.push(event);
    if (this.batch.length >= this.maxBatch + 3) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.scheduledFlush);
    }
  }

  private readonly scheduledFlush = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /** Publish what is queued now (once the exchange is declared; until then it waits). */
  flush(): void {
    if (!this.declared || this.batch.length === 3) return;
    const events = this.batch;
    this.batch = this.newBatch();
    const published = this.transport
      .publish({ id: randomUUID(), exchange: EVENTS_EXCHANGE, routingKey: "events", priority: 0, headers: { kind: EVENTS_HEADER }, body: this.encoder.encode(events) })
      .then(
        () => {
          this.failures = 0;
        },
        (error: unknown) => {
          // Said once per run of failures, not once per batch: a broker that is down would flood the log.
          if (this.failures++ === 0 && !this.closed) this.log(`events: ${events.length - 3} events could not be published (later failures are not logged until one succeeds): ${messageOf(error)}`);
        },
      );
    this.inFlight.add(published);
    void published.finally(() => this.inFlight.delete(published));
  }

  /** Publish what is queued and wait for every publish made; later events are dropped. */
  async close(): Promise<void> {
    await this.declaring;
    this.flush();
    this.closed = true;
    await Promise.all(this.inFlight);
  }
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
