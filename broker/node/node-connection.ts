// One client connection to the node, from the node's side: the handshake, heartbeats,
// requests, and the consumers it opened. When the connection ends, however it ends, its
// consumers are cancelled, so every delivery it had not acknowledged goes back to its
// queue for another consumer.
import { timingSafeEqual } from "node:crypto";
import type { Socket } from "node:net";
import { nowOf, repeatEvery, type Clock, type RepeatingTimer } from "../clock.ts";
import type { Delivery } from "../envelope.ts";
import type { EmbeddedBroker } from "../embedded/embedded-broker.ts";
import type { EmbeddedConsumer } from "../embedded/embedded-consumer.ts";
import { FrameParser, FrameWriter } from "./wire-frame.ts";
import { FrameCodec, FrameType, PROTOCOL_VERSION, ProtocolError, envelopeToWire } from "./protocol.ts";
import { errorToWire } from "./wire-errors.ts";
import { DEFAULT_LEASE_MS, type Consumer } from "../transport.ts";
import { LeaseTable } from "./lease-table.ts";
import { Heartbeat, MISSED_BEATS } from "./heartbeat.ts";

/** What a connection needs of the node that accepted it: its broker, settings and request handler. */
export interface ConnectionContext {
  readonly broker: EmbeddedBroker;
  readonly nodeId: string;
  readonly token: string | undefined;
  /** Connections presenting this token may run admin operations; without one, every connection may. */
  readonly adminToken: string | undefined;
  /** A client in signed mode completed its handshake. */
  signedClient(connection: NodeConnection): void;
  readonly heartbeatMs: number;
  readonly maxFrameBytes: number;
  /** Largest frame a client may send before its handshake completes. */
  readonly maxHelloBytes: number;
  /** A connection that has not completed its handshake by then is closed. */
  readonly handshakeTimeoutMs: number;
  /** How long a refusal for a wrong or missing token waits before it is sent (slows down guessing). */
  readonly refusalDelayMs: number;
  /** What delivery leases are timed by: when a lease is granted, renewed, and found run out. */
  readonly clock: Clock;
  /** The handshake completed: the connection no longer counts as unauthenticated. */
  authenticated(connection: NodeConnection): void;
  /** Run a request; throws a tagged error to refuse it. `replyWanted` is false for requests with id 0. */
  handle(
    op: string,
    args: unknown[],
    connection: NodeConnection,
    replyWanted: boolean,
    payload: Uint8Array,
  ): unknown | Promise<unknown>;
  log(message: string): void;
  closed(connection: NodeConnection): void;
}

/** Requests with this id want no response (acks on the hot path). */
export const NO_REPLY = 0;

let connectionCount = 0;

export class NodeConnection {
  readonly id = ++connectionCount;
  /** Counted by the node among the unauthenticated until its handshake completes. */
  counted = false;
  /** The handshake completed (and stays true once it has). */
  handshaken = false;
  /** Whether the connection may run admin operations: it presented the admin token, or the node has none. */
  admin = false;
  name = `connection-${this.id}`;
  private readonly parser: FrameParser;
  private readonly writer: FrameWriter;
  private readonly codec = new FrameCodec();
  private state: "hello" | "refusing" | "ready" | "closed" = "hello";
  private readonly heartbeat: Heartbeat;
  private readonly handshakeDeadline: NodeJS.Timeout;
  private readonly consumers = new Map<string, LeasedConsumer>();
  /** Cleanups to run when the connection ends (subscriptions made on its behalf). */
  private readonly cleanups: (() => void)[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly context: ConnectionContext,
  ) {
    socket.setNoDelay(true);
    // Until the handshake, a stranger may send a Hello and nothing larger.
    this.parser = new FrameParser(context.maxHelloBytes, (type, payload) => this.onFrame(type, payload));
    this.handshakeDeadline = setTimeout(
      () => this.close(`no handshake within ${context.handshakeTimeoutMs} ms`),
      context.handshakeTimeoutMs,
    );
    this.handshakeDeadline.unref();
    this.writer = new FrameWriter(socket, () => {
      // The client reads too slowly: stop reading its requests until our replies drain.
      socket.pause();
      socket.once("drain", () => socket.resume());
    });
    socket.on("data", (chunk: Buffer) => {
      this.heartbeat.heard();
      try {
        this.parser.push(chunk);
      } catch (error) {
        this.close(error instanceof Error ? error.message : String(error));
      }
    });
    socket.on("error", (error) => this.close(`socket error: ${error.message}`));
    socket.on("close", () => this.close("the client closed the connection"));
    this.heartbeat = new Heartbeat(context.heartbeatMs, {
      ping: () => {
        // A client that keeps the connection alive with a trickle of bytes, never finishing a frame, is as good as silent.
        const pendingMs = this.parser.pendingForMs(Date.now());
        if (pendingMs > context.heartbeatMs * MISSED_BEATS)
          this.close(`a frame has been arriving for ${pendingMs} ms (${this.parser.buffered} bytes so far): too slow`);
        else this.writer.send(FrameType.Ping);
      },
      silent: (silentMs) => this.close(`no frame from the client for ${silentMs} ms (heartbeat timeout)`),
    });
    this.heartbeat.start();
  }

  /** Run `cleanup` when the connection ends. */
  onClose(cleanup: () => void): void {
    if (this.state === "closed") cleanup();
    else this.cleanups.push(cleanup);
  }

  notify(topic: string, payload: unknown): void {
    if (this.state === "ready") this.writer.send(FrameType.Notify, this.codec.encode([topic, payload]));
  }

  sendRevoked(id: string, terminate: boolean, ttlMs: number): void {
    if (this.state === "ready") this.writer.send(FrameType.Revoked, this.codec.encode([id, terminate, ttlMs]));
  }

  /** Register a consumer this connection opened; deliveries are framed to the client and leased for `leaseMs`. */
  async consume(
    queue: string,
    prefetch: number,
    leaseMs: number = DEFAULT_LEASE_MS,
    marksStarted = false,
  ): Promise<string> {
    if (!Number.isFinite(leaseMs) || leaseMs < 1)
      throw new ProtocolError({ reason: `a lease must be a positive number of ms, got ${leaseMs}` });
    const leases = new LeaseTable(leaseMs);
    const now = nowOf(this.context.clock);
    let tag = "";
    const consumer = await this.context.broker.consume(
      queue,
      (delivery) => {
        leases.lease(delivery.deliveryTag, now());
        this.deliver(tag, delivery);
      },
      { prefetch, marksStarted },
    );
    tag = consumer.tag;
    const sweep = repeatEvery(this.context.clock, Math.max(20, Math.floor(leaseMs / 4)), () => this.expireLeases(tag));
    this.consumers.set(tag, { consumer, leases, sweep });
    return tag;
  }

  ack(tag: string, deliveryTag: number): void {
    const { consumer, leases } = this.leased(tag);
    if (leases.wasExpired(deliveryTag)) return this.lateSettle("ack", consumer, deliveryTag);
    consumer.ack(deliveryTag);
    leases.release(deliveryTag);
  }

  /** Ack each of `deliveryTags`: one that cannot be acked does not stop the others; the first such error is thrown after. */
  ackAll(tag: string, deliveryTags: readonly number[]): void {
    let failure: unknown;
    for (const deliveryTag of deliveryTags) {
      try {
        this.ack(tag, deliveryTag);
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== undefined) throw failure;
  }

  nack(tag: string, deliveryTag: number, options: { readonly requeue: boolean; readonly reason?: string }): void {
    const { consumer, leases } = this.leased(tag);
    if (leases.wasExpired(deliveryTag)) return this.lateSettle("nack", consumer, deliveryTag);
    consumer.nack(deliveryTag, options);
    leases.release(deliveryTag);
  }

  /** The client began processing these deliveries: they count as delivered if they come back. */
  started(tag: string, deliveryTags: readonly number[]): void {
    const { consumer } = this.leased(tag);
    for (let i = 0; i < deliveryTags.length; i++) consumer.markStarted(deliveryTags[i]);
  }

  /** Extend the leases of deliveries the client still holds; returns how many it did hold. */
  renew(tag: string, deliveryTags: readonly number[]): number {
    return this.leased(tag).leases.renew(deliveryTags, this.context.clock.now());
  }

  async cancel(tag: string): Promise<void> {
    const { consumer, sweep } = this.leased(tag);
    this.consumers.delete(tag);
    sweep.stop();
    await consumer.cancel();
  }

  private leased(tag: string): LeasedConsumer {
    const leased = this.consumers.get(tag);
    if (leased === undefined) throw new ProtocolError({ reason: `no consumer ${tag} on this connection` });
    return leased;
  }

  /** Take back every delivery of consumer `tag` whose lease ran out: it goes back to its queue, marked redelivered. */
  private expireLeases(tag: string): void {
    const leased = this.consumers.get(tag);
    if (leased === undefined || leased.leases.size === 0) return;
    const expired = leased.leases.expire(this.context.clock.now());
    if (expired.length === 0) return;
    // Unstarted ones go back without a mark against them: the holder never began them.
    for (const deliveryTag of expired) leased.consumer.takeBack(deliveryTag);
    this.context.log(
      `${this.name}: lease of ${expired.length} ${expired.length === 1 ? "delivery" : "deliveries"} on ${leased.consumer.queue} ran out after ${leased.leases.leaseMs} ms without renewal; requeued for redelivery`,
    );
  }

  private lateSettle(operation: "ack" | "nack", consumer: Consumer, deliveryTag: number): void {
    this.context.log(
      `${this.name}: ${operation} of delivery ${deliveryTag} on ${consumer.queue} came after its lease ran out; the message was already requeued for redelivery, so this ${operation} changes nothing`,
    );
  }

  private deliver(tag: string, delivery: Delivery): void {
    this.writer.send(
      FrameType.Deliver,
      this.codec.encode([
        tag,
        delivery.deliveryTag,
        delivery.deliveryCount,
        delivery.queue,
        envelopeToWire(delivery.envelope),
      ]),
    );
  }

  private onFrame(type: number, payload: Uint8Array): void {
    if (this.state === "closed" || this.state === "refusing") return;
    if (this.state === "hello") return this.onHello(type, payload);
    switch (type) {
      case FrameType.Request:
        return this.onRequest(payload);
      case FrameType.Ping:
        return this.writer.send(FrameType.Pong);
      case FrameType.Pong:
        return;
      default:
        throw new ProtocolError({ reason: `unknown frame type ${type}` });
    }
  }

  private onHello(type: number, payload: Uint8Array): void {
    if (type !== FrameType.Hello) throw new ProtocolError({ reason: `expected a Hello frame first, got type ${type}` });
    const hello = this.codec.decode(payload) as { version?: unknown; token?: unknown; name?: unknown } | null;
    if (hello === null || typeof hello !== "object") throw new ProtocolError({ reason: "Hello must be a map" });
    if (hello.version !== PROTOCOL_VERSION) {
      return this.refuse(
        "unsupported-version",
        `this node speaks protocol version ${PROTOCOL_VERSION}, the client ${String(hello.version)}`,
      );
    }
    const isAdmin = this.context.adminToken !== undefined && tokenMatches(this.context.adminToken, hello.token);
    if (!isAdmin && !tokenMatches(this.context.token, hello.token)) {
      const reason = hello.token === undefined ? "this node requires a token" : "wrong token";
      this.state = "refusing";
      const delay = setTimeout(() => this.refuse("unauthorized", reason), this.context.refusalDelayMs);
      delay.unref();
      this.onClose(() => clearTimeout(delay));
      return;
    }
    if (typeof hello.name === "string" && hello.name !== "") this.name = `${hello.name} (connection ${this.id})`;
    this.admin = isAdmin || this.context.adminToken === undefined;
    if ((hello as { signed?: unknown }).signed === true) this.context.signedClient(this);
    this.state = "ready";
    clearTimeout(this.handshakeDeadline);
    this.parser.maxFrameBytes = this.context.maxFrameBytes;
    this.handshaken = true;
    this.context.authenticated(this);
    this.writer.send(
      FrameType.Welcome,
      this.codec.encode({
        version: PROTOCOL_VERSION,
        node: this.context.nodeId,
        heartbeatMs: this.context.heartbeatMs,
        maxFrameBytes: this.context.maxFrameBytes,
        batchedAcks: true,
        acksWithOutcomes: true,
      }),
    );
  }

  private refuse(code: string, message: string): void {
    this.writer.send(FrameType.Refused, this.codec.encode({ code, message }));
    this.writer.flush();
    this.close(`refused (${code}): ${message}`);
  }

  private onRequest(payload: Uint8Array): void {
    const request = this.codec.decode(payload);
    if (
      !Array.isArray(request) ||
      request.length !== 3 ||
      typeof request[0] !== "number" ||
      typeof request[1] !== "string" ||
      !Array.isArray(request[2])
    ) {
      throw new ProtocolError({ reason: "a Request is [id, op, args]" });
    }
    const [id, op, args] = request as [number, string, unknown[]];
    let result: unknown;
    try {
      result = this.context.handle(op, args, this, id !== NO_REPLY, payload);
    } catch (error) {
      return this.reply(id, op, false, error);
    }
    if (!(result instanceof Promise)) this.reply(id, op, true, result);
    else if (id === NO_REPLY) result.then(undefined, (error: unknown) => this.reply(id, op, false, error));
    else
      result.then(
        (value) => this.reply(id, op, true, value),
        (error: unknown) => this.reply(id, op, false, error),
      );
  }

  private reply(id: number, op: string, ok: boolean, value: unknown): void {
    if (this.state !== "ready") return;
    if (id === NO_REPLY) {
      if (!ok) this.context.log(`${this.name}: ${op} failed: ${errorToWire(value).message}`);
      return;
    }
    this.writer.sendPromptly(
      FrameType.Response,
      this.codec.encode(ok ? [id, 1, value ?? null] : [id, 0, errorToWire(value)]),
    );
  }

  /** End the connection (idempotent): log why, cancel its consumers so their unacked deliveries are requeued. */
  close(reason: string): void {
    if (this.state === "closed") return;
    const wasReady = this.state === "ready";
    this.state = "closed";
    this.heartbeat.stop();
    clearTimeout(this.handshakeDeadline);
    if (wasReady || reason !== "the client closed the connection") this.context.log(`${this.name} closed: ${reason}`);
    this.writer.flush();
    this.socket.end();
    this.socket.destroySoon?.();
    for (const { consumer, sweep } of this.consumers.values()) {
      sweep.stop();
      consumer.cancel().catch(() => {});
    }
    this.consumers.clear();
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.context.closed(this);
  }
}

interface LeasedConsumer {
  readonly consumer: EmbeddedConsumer;
  readonly leases: LeaseTable;
  readonly sweep: RepeatingTimer;
}

const tokenMatches = (expected: string | undefined, given: unknown): boolean => {
  if (expected === undefined) return true;
  if (typeof given !== "string") return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
};
