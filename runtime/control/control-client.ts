// The caller's side of remote control: broadcasts a command and gathers the
// replies that arrive within the timeout. One reply queue per client (auto-
// delete, made on first use), replies matched to their call by ticket.
import { randomUUID } from "node:crypto";
import type { Delivery } from "../../broker/envelope.ts";
import type { Consumer, Transport } from "../../broker/transport.ts";
import { CONTROL_EXCHANGE, REPLY_EXCHANGE, readReply, requestEnvelope, type ControlReply } from "./control-protocol.ts";

/** Which workers a broadcast asks, how long and for how many replies it waits. */
export interface BroadcastOptions {
  /** Only these workers answer (by name). Default: every worker. */
  readonly destination?: string | readonly string[];
  /** How long to gather replies, in ms. Default 1000. */
  readonly timeout?: number;
  /** Stop gathering after this many replies. Default: the number of names in `destination`, else none. */
  readonly limit?: number;
  /** Wait for replies at all. Default true. */
  readonly reply?: boolean;
}

export const DEFAULT_CONTROL_TIMEOUT_MS = 1_000;

interface Call {
  readonly replies: ControlReply[];
  readonly limit: number;
  readonly done: () => void;
}

export class ControlClient {
  private setup: Promise<{ queue: string; consumer: Consumer }> | undefined;
  private readonly calls = new Map<string, Call>();
  private closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly log: (message: string) => void,
  ) {}

  /**
   * Send `method` to the workers and resolve with their replies: once the
   * timeout has passed, or as soon as `limit` workers have replied. No worker
   * (or none of those named) gives an empty list after the timeout.
   */
  async broadcast(
    method: string,
    args: Readonly<Record<string, unknown>> = {},
    options: BroadcastOptions = {},
  ): Promise<ControlReply[]> {
    if (this.closed) throw new Error("remote control: the app is closed");
    const destination =
      options.destination === undefined
        ? null
        : typeof options.destination === "string"
          ? [options.destination]
          : [...options.destination];
    if (
      destination !== null &&
      (destination.length === 0 || destination.some((name) => typeof name !== "string" || name === ""))
    ) {
      throw new TypeError("remote control: destination must be a worker name or a non-empty list of worker names");
    }
    const timeout = options.timeout ?? DEFAULT_CONTROL_TIMEOUT_MS;
    if (!(typeof timeout === "number" && timeout >= 0 && Number.isFinite(timeout)))
      throw new TypeError(`remote control: timeout must be a number of ms, got ${String(timeout)}`);
    await this.transport.declareExchange(CONTROL_EXCHANGE, "fanout");
    const ticket = randomUUID();
    if (options.reply === false) {
      await this.transport.publish(
        requestEnvelope(ticket, { method, arguments: args, destination, reply_to: null, ticket }),
      );
      return [];
    }
    const { queue } = await this.replyQueue();
    const replies: ControlReply[] = [];
    const limit = options.limit ?? (destination === null ? Number.POSITIVE_INFINITY : new Set(destination).size);
    let timer: NodeJS.Timeout | undefined;
    const finished = new Promise<void>((resolve) => {
      this.calls.set(ticket, { replies, limit, done: resolve });
      timer = setTimeout(resolve, timeout);
    });
    try {
      await this.transport.publish(
        requestEnvelope(ticket, { method, arguments: args, destination, reply_to: queue, ticket }),
      );
      await finished;
    } finally {
      clearTimeout(timer);
      this.calls.delete(ticket);
    }
    return replies;
  }

  private replyQueue(): Promise<{ queue: string; consumer: Consumer }> {
    this.setup ??= (async () => {
      const queue = `${REPLY_EXCHANGE}.${randomUUID()}`;
      await this.transport.declareExchange(REPLY_EXCHANGE, "direct");
      await this.transport.declareQueue(queue, { autoDelete: true });
      await this.transport.bindQueue(queue, REPLY_EXCHANGE, queue);
      let consumer: Consumer | undefined;
      const early: Delivery[] = [];
      const receive = (delivery: Delivery) => {
        if (consumer === undefined) return void early.push(delivery);
        consumer.ack(delivery.deliveryTag);
        let reply: ControlReply;
        try {
          reply = readReply(delivery.envelope.body);
        } catch (error) {
          return this.log(
            `remote control: dropped an unreadable reply: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
        const call = this.calls.get(reply.ticket);
        if (call === undefined) return; // late: its call has timed out
        call.replies.push(reply);
        if (call.replies.length >= call.limit) call.done();
      };
      consumer = await this.transport.consume(queue, receive, { prefetch: 256 });
      for (const delivery of early.splice(0)) receive(delivery);
      return { queue, consumer };
    })();
    this.setup.catch(() => (this.setup = undefined));
    return this.setup;
  }

  /** Stop: the reply queue goes. */
  async close(): Promise<void> {
    this.closed = true;
    const setup = this.setup;
    this.setup = undefined;
    if (setup === undefined) return;
    const { consumer } = await setup.catch(() => ({ consumer: undefined }));
    await consumer?.cancel();
  }
}
