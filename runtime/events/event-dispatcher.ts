// The event dispatcher: publishes events to the events exchange. Events sent in one
// event-loop turn go out together, in one envelope (see event-wire.ts for its body): a
// worker emits three events per task, and one publish per event would cost more than
// running a small task. A batch is also flushed once it holds `maxBatch` events, and on
// `flush()` / `flushSoon()` (the app's task-sent events go out before the tasks' own
// messages, so no worker's event about a task can overtake its task-sent).
//
// With nobody subscribed, the exchange routes a batch to no queue and the broker drops
// it. One dispatcher serves an app and its workers, so the events of one process keep
// their order.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Transport } from "../../broker/transport.ts";
import { EVENTS_EXCHANGE, type CelerityEvent, type EventFields } from "./event-types.ts";
import { EVENT_WIRE_VERSION, toWire, type WireEvent } from "./event-wire.ts";
import { EventWriter } from "./event-writer.ts";

export const EVENTS_HEADER = "celerity-events";

const DEFAULT_MAX_BATCH = 512;

/** The `hostname` of a process that is not a worker: Celery's form, `<pid>@<host>`. */
export const processName = (): string => `${process.pid}@${hostname()}`;

export class EventDispatcher {
  private readonly utcoffset = -new Date().getTimezoneOffset() / 60;
  private readonly writer = new EventWriter();
  /** Where events go when none can be sent (the exchange could not be declared, or closed): written, then dropped. */
  private readonly discard = new EventWriter();
  private flushScheduled = false;
  private clock = 0;
  private declared = false;
  private disabled = false;
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
      (error: unknown) => {
        this.disabled = true;
        this.writer.take();
        this.log(
          `events: could not declare the '${EVENTS_EXCHANGE}' exchange, so no event is sent: ${messageOf(error)}`,
        );
      },
    );
  }

  /** Resolves once the exchange is declared (at once afterwards): events sent before go out then. */
  get ready(): Promise<void> {
    return this.declaring;
  }

  /**
   * Start an event of `type` sent by `hostname`, stamped with its time and
   * clock; the caller then writes exactly `fields` values, in the order of
   * EVENT_FIELDS for its type. What a worker does three times per task.
   */
  event(hostname: string, code: number, fields: number): EventWriter {
    if (this.closed || this.disabled) {
      this.discard.begin(0);
      return this.discard;
    }
    const writer = this.writer;
    if (writer.length >= this.maxBatch + 3 && this.declared) this.flush();
    if (writer.length === 0) {
      writer.begin(3);
      writer.number(EVENT_WIRE_VERSION);
      writer.number(process.pid);
      writer.number(this.utcoffset);
    }
    writer.counted();
    writer.array(4 + fields);
    writer.number(code);
    writer.string(hostname);
    writer.number(Date.now() / 1000);
    writer.number(++this.clock);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.scheduledFlush);
    }
    return writer;
  }

  /** Queue an event given as an object (for events sent once per task or less). */
  send(hostname: string, fields: EventFields<CelerityEvent>): void {
    this.sendWire(toWire(hostname, fields as unknown as { type: CelerityEvent["type"] } & Record<string, unknown>));
  }

  /** Queue an event in its wire form (event-wire.ts); its timestamp and clock are stamped here. */
  sendWire(event: WireEvent): void {
    const writer = this.event(event[1] as string, event[0] as number, event.length - 4);
    for (let i = 4; i < event.length; i++) writer.value(event[i]);
  }

  private readonly scheduledFlush = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  private flushing: Promise<void> | undefined;

  /**
   * Publish what is queued on the next microtask, once for every caller in
   * this turn, and resolve after it: the app's task-sent events go out as one
   * batch ahead of the burst of task messages that waits on this.
   */
  flushSoon(): Promise<void> {
    if (!this.declared) return this.declaring;
    return (this.flushing ??= Promise.resolve().then(() => {
      this.flushing = undefined;
      this.flush();
    }));
  }

  /** Publish what is queued now (once the exchange is declared; until then it waits). */
  flush(): void {
    if (!this.declared || this.writer.length === 0) return;
    const count = this.writer.length - 3;
    const body = this.writer.take();
    const published = this.transport
      .publish({
        id: randomUUID(),
        exchange: EVENTS_EXCHANGE,
        routingKey: "events",
        priority: 0,
        headers: { kind: EVENTS_HEADER },
        body,
      })
      .then(
        () => {
          this.failures = 0;
        },
        (error: unknown) => {
          // Said once per run of failures, not once per batch: a broker that is down would flood the log.
          if (this.failures++ === 0 && !this.closed)
            this.log(
              `events: ${count} events could not be published (later failures are not logged until one succeeds): ${messageOf(error)}`,
            );
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
