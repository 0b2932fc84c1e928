// The client's connection to a broker node: handshake, heartbeats, requests matched to
// responses, and reconnection with exponential backoff. Requests made while disconnected
// wait for the next connection (up to `requestTimeoutMs`); requests in flight when a
// connection dies are rejected with ConnectionLostError. After each (re)connection the
// `onConnected` hooks run first, so consumers are re-established before anything else is sent.
import { connect, type Socket } from "node:net";
import { Data } from "effect";
import type { Clock } from "../../clock.ts";
import {
  FrameCodec,
  FrameType,
  PROTOCOL_VERSION,
  ProtocolError,
  ConnectionRefusedError,
  type WireError,
} from "../protocol.ts";
import type { AnswerOf, AnyOperation, SentOf } from "../operations.ts";
import { errorFromWire } from "../wire-errors.ts";
import { Heartbeat } from "../heartbeat.ts";
import { DEFAULT_HEARTBEAT_MS, nodeClientSettings, type NodeClientSettings } from "../node-settings.ts";
import {
  DEFAULT_MAX_FRAME_BYTES,
  FRAME_HEADER_BYTES,
  FrameParser,
  FrameTooLargeError,
  FrameWriter,
} from "../wire-frame.ts";

/**
 * A request was in flight when the connection to the node died: the client cannot know
 * whether the node acted on it.
 *
 * @example
 * try {
 *   await add.delay(1, 2);
 * } catch (error) {
 *   if (error instanceof ConnectionLostError) console.log("the task may or may not have been sent");
 * }
 */
export class ConnectionLostError extends Data.TaggedError("ConnectionLostError")<{
  readonly url: string;
  readonly op: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `connection to ${this.url} was lost before '${this.op}' was answered (${this.reason}); it may or may not have been applied`;
  }
}

/**
 * A request to the node got no answer in time (`requestTimeoutMs`, default 30 s): no connection, or a node too busy to answer.
 *
 * @example
 * const transport = NodeTransport.create("celerity://127.0.0.1:5690", { requestTimeoutMs: 5_000 });
 * await transport.stats("celery").catch((error) => error instanceof RequestTimeoutError); // true while no node answers
 */
export class RequestTimeoutError extends Data.TaggedError("RequestTimeoutError")<{
  readonly url: string;
  readonly op: string;
  readonly timeoutMs: number;
}> {
  override get message(): string {
    return `'${this.op}' to ${this.url} got no answer within ${this.timeoutMs} ms (is the node running and reachable?)`;
  }
}

/**
 * A request made after the connection was closed for good: after `app.close()`, or after the node refused the handshake.
 *
 * @example
 * await app.close();
 * await add.delay(1, 2); // rejects with ClientClosedError
 */
export class ClientClosedError extends Data.TaggedError("ClientClosedError")<{
  readonly url: string;
}> {
  override get message(): string {
    return `the connection to ${this.url} is closed`;
  }
}

/**
 * Settings of a connection to a broker node (`NodeTransport.create`).
 *
 * @example
 * NodeTransport.create("celerity://127.0.0.1:5690", { token: process.env.CELERITY_TOKEN, name: "billing", requestTimeoutMs: 5_000, reconnectMaxMs: 10_000 });
 */
export interface NodeClientOptions {
  readonly token?: string;
  /** The client runs in signed mode: a node without a token says so loudly. */
  readonly signed?: boolean;
  /** Shown in the node's logs. */
  readonly name?: string;
  readonly heartbeatMs?: number;
  /** First reconnection delay, doubled per failed attempt up to `reconnectMaxMs`. Default 50 ms. */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  /** A request not answered (or not sendable) within this is rejected. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Requests awaiting an answer at most; more wait for room (flow control). Default 10,000. */
  readonly maxInFlight?: number;
  /**
   * What renewals of delivery leases are timed by. Default the system clock;
   * a test hands in the node's virtual clock to run leases on virtual time.
   */
  readonly clock?: Clock;
  readonly log?: (message: string) => void;
}

interface Pending {
  readonly op: string;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  readonly timer: NodeJS.Timeout | undefined;
}

/** Parse `celerity://host:port`. */
export const parseNodeUrl = (url: string): { host: string; port: number } => {
  const match = /^celerity:\/\/([^:/]+|\[[^\]]+\]):(\d+)\/?$/.exec(url);
  if (match === null)
    throw new ProtocolError({ reason: `broker url must look like celerity://host:port, got '${url}'` });
  return { host: match[1].replace(/^\[|\]$/g, ""), port: Number(match[2]) };
};

export class NodeClient {
  private socket: Socket | undefined;
  private writer: FrameWriter | undefined;
  private readonly codec = new FrameCodec();
  private state: "connecting" | "ready" | "waiting" | "closed" = "waiting";
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private attempt = 0;
  private ready: Promise<void>;
  private markReady!: () => void;
  private failReady!: (error: unknown) => void;
  private heartbeat: Heartbeat | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly host: string;
  private readonly port: number;
  private readonly onConnectedHooks: (() => Promise<void>)[] = [];
  private readonly frameHandlers = new Map<number, (payload: unknown) => void>();
  private inFlight = 0;
  private readonly roomWaiters: (() => void)[] = [];

  private readonly settings: NodeClientSettings;

  constructor(
    readonly url: string,
    options: NodeClientOptions = {},
  ) {
    this.settings = nodeClientSettings(options);
    ({ host: this.host, port: this.port } = parseNodeUrl(url));
    this.ready = this.newReadyPromise();
  }

  /** Connect (resolves after the handshake) and keep reconnecting whenever the connection drops, until close(). */
  async start(): Promise<void> {
    this.open();
    await this.waitReady("connect");
  }

  /** Run `hook` after every (re)connection, before queued requests are sent. */
  onConnected(hook: () => Promise<void>): void {
    this.onConnectedHooks.push(hook);
  }

  /** Run `hook` whenever an established connection drops (before reconnecting). */
  onDisconnected(hook: (reason: string) => void): () => void {
    this.onDisconnectedHooks.add(hook);
    return () => {
      this.onDisconnectedHooks.delete(hook);
    };
  }

  private readonly onDisconnectedHooks = new Set<(reason: string) => void>();

  /** Receive frames of `type` (Deliver, Revoked, Notify). Several handlers of one type are called in the order added. */
  onFrame(type: number, handler: (payload: unknown) => void): void {
    const previous = this.frameHandlers.get(type);
    this.frameHandlers.set(
      type,
      previous === undefined
        ? handler
        : (payload) => {
            previous(payload);
            handler(payload);
          },
    );
  }

  /** The clock this client's lease renewals run on. */
  get clock(): Clock {
    return this.settings.clock;
  }

  get connected(): boolean {
    return this.state === "ready";
  }

  /**
   * Call operation `op` (declared in operations.ts or by a service) and wait for its answer.
   * A lone request is written at once; `batched` lets it wait for the end of
   * the event-loop turn instead, with the other frames of the turn (for a
   * request made alongside a burst of acks, where one write beats two).
   */
  async call<O extends AnyOperation>(op: O, args: SentOf<O>, batched = false): Promise<AnswerOf<O>> {
    if (this.mustWait()) await this.waitToSend(op.name);
    return this.send(op.name, args, batched) as Promise<AnswerOf<O>>;
  }

  /**
   * `call`, with its arguments made as the request is written: for arguments
   * that hold only on the connection they are written to (a delivery's tags,
   * see `connection`), after a wait for a connection or for room.
   */
  async callWith<O extends AnyOperation>(op: O, makeArgs: () => SentOf<O>): Promise<AnswerOf<O>> {
    if (this.mustWait()) await this.waitToSend(op.name);
    return this.send(op.name, makeArgs()) as Promise<AnswerOf<O>>;
  }

  /** The current connection, as an identity only: a new one after every reconnection, and what a delivery's tags hold on. */
  get connection(): object | undefined {
    return this.socket;
  }

  /** Whether a request has to wait before it is written (throws once the client is closed). */
  private mustWait(): boolean {
    if (this.state === "closed") throw this.refusal ?? new ClientClosedError({ url: this.url });
    return this.state !== "ready" || this.inFlight >= this.settings.maxInFlight;
  }

  private async waitToSend(name: string): Promise<void> {
    if (this.state !== "ready") await this.waitReady(name);
    if (this.inFlight >= this.settings.maxInFlight) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
      // The connection may have dropped while this request waited for room.
      if (this.state !== "ready") await this.waitReady(name);
    }
  }

  /**
   * Send a request that wants no answer. Without a connection it is dropped
   * (right for acks: the node has requeued those deliveries, and their tags
   * mean nothing on a new connection), unless `keep` asks to send it, in
   * order, once connected.
   */
  tell<O extends AnyOperation>(op: O, args: SentOf<O>, keep = false): void {
    this.sendDeferred();
    // Welcomed is enough: acks made while consumers are being reopened must go out.
    if (this.welcomedOnSocket) {
      this.writer!.send(FrameType.Request, this.codec.encode([0, op.name, args]));
    } else if (keep && this.state !== "closed") {
      this.kept.push([op.name, args]);
    }
  }

  /** Write every frame queued now, rather than at the end of this event-loop turn. */
  flush(): void {
    this.sendDeferred();
    if (this.welcomedOnSocket) this.writer!.flush();
  }

  private deferred: (() => void)[] = [];

  /**
   * Run `send` at the end of this run of code, or before this client sends
   * anything else (a request, a tell, a flush) if that comes first: for
   * requests gathered over a run and sent as one (a consumer's acks and start
   * marks), which must still reach the node before anything asked after them.
   */
  sendSoon(send: () => void): void {
    if (this.deferred.length === 0) queueMicrotask(this.sendDeferred);
    this.deferred.push(send);
  }

  private readonly sendDeferred = (): void => {
    if (this.deferred.length === 0) return;
    const sends = this.deferred;
    this.deferred = [];
    for (const send of sends) send();
  };

  private readonly exitHooks = new Set<() => void>();
  private readonly onProcessExit = (): void => {
    for (const hook of this.exitHooks) hook();
    this.flush();
  };

  /**
   * Run `hook`, then write what is queued, if the process exits (process.exit)
   * before this turn's frames are sent: for frames that must not be lost
   * with the process. Returns a function that removes the hook.
   */
  beforeExit(hook: () => void): () => void {
    if (this.exitHooks.size === 0) process.on("exit", this.onProcessExit);
    this.exitHooks.add(hook);
    return () => {
      if (this.exitHooks.delete(hook) && this.exitHooks.size === 0) process.off("exit", this.onProcessExit);
    };
  }

  /** Tells kept for the next connection, sent before anything else once it is ready. */
  private kept: [string, readonly unknown[]][] = [];

  /** Whether the node takes several acks in one request (`acks`, from its Welcome); an older node takes one at a time. */
  batchedAcks = false;

  /**
   * Whether the node acknowledges a delivery named in a task's completion
   * once that outcome is recorded (from its Welcome); an older node takes
   * acks only as acks.
   */
  acksWithOutcomes = false;

  /** The node's frame limit (from its Welcome). */
  private maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
  /** Why the node refused us, for every later call. */
  private refusal: ConnectionRefusedError | undefined;

  /** For calls made by onConnected hooks, which run before the client counts as ready. */
  callNow<O extends AnyOperation>(op: O, args: SentOf<O>): Promise<AnswerOf<O>> {
    return this.send(op.name, args) as Promise<AnswerOf<O>>;
  }

  private send(op: string, args: readonly unknown[], batched = false): Promise<unknown> {
    this.sendDeferred();
    const id = this.nextId++;
    const timeoutMs = this.settings.requestTimeoutMs;
    const payload = this.codec.encode([id, op, args]);
    // Refused here rather than sent: the node would close the whole connection over it.
    if (payload.byteLength + FRAME_HEADER_BYTES > this.maxFrameBytes) {
      return Promise.reject(
        new FrameTooLargeError({ size: payload.byteLength + FRAME_HEADER_BYTES, max: this.maxFrameBytes }),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) {
          this.released();
          reject(new RequestTimeoutError({ url: this.url, op, timeoutMs }));
        }
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { op, resolve, reject, timer });
      this.inFlight++;
      if (batched) this.writer!.send(FrameType.Request, payload);
      else this.writer!.sendPromptly(FrameType.Request, payload);
    });
  }

  private released(): void {
    this.inFlight--;
    this.roomWaiters.shift()?.();
  }

  private async waitReady(op: string): Promise<void> {
    const timeoutMs = this.settings.requestTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RequestTimeoutError({ url: this.url, op, timeoutMs })), timeoutMs);
    });
    try {
      await Promise.race([this.ready, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private newReadyPromise(): Promise<void> {
    const promise = new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      this.failReady = reject;
    });
    promise.catch(() => {});
    return promise;
  }

  private open(): void {
    if (this.state === "closed") return;
    this.state = "connecting";
    const socket = connect({ host: this.host, port: this.port });
    this.socket = socket;
    socket.setNoDelay(true);
    const writer = new FrameWriter(socket);
    this.writer = writer;
    const parser = new FrameParser(DEFAULT_MAX_FRAME_BYTES, (type, payload) => this.onFrameReceived(type, payload));
    socket.on("connect", () => {
      writer.send(
        FrameType.Hello,
        this.codec.encode({
          version: PROTOCOL_VERSION,
          token: this.settings.token,
          name: this.settings.name,
          ...(this.settings.signed ? { signed: true } : {}),
        }),
      );
    });
    socket.on("data", (chunk: Buffer) => {
      this.heartbeat?.heard();
      try {
        parser.push(chunk);
      } catch (error) {
        this.dropped(socket, error instanceof Error ? error.message : String(error));
      }
    });
    socket.on("error", (error) => this.dropped(socket, error.message));
    socket.on("close", () => this.dropped(socket, "the node closed the connection"));
  }

  private onFrameReceived(type: number, payload: Uint8Array): void {
    switch (type) {
      case FrameType.Welcome:
        return void this.welcomed(this.codec.decode(payload) as Parameters<NodeClient["welcomed"]>[0]);
      case FrameType.Refused: {
        const refusal = this.codec.decode(payload) as { code: string; message: string };
        const error = new ConnectionRefusedError({ code: refusal.code, reason: refusal.message });
        this.refusal = error;
        this.failReady(error);
        this.close();
        return;
      }
      case FrameType.Response: {
        const [id, ok, value] = this.codec.decode(payload) as [number, number, unknown];
        const pending = this.pending.get(id);
        if (pending === undefined) return;
        this.pending.delete(id);
        clearTimeout(pending.timer);
        this.released();
        if (ok === 1) pending.resolve(value);
        else pending.reject(errorFromWire(value as WireError, pending.op));
        return;
      }
      case FrameType.Ping:
        return this.writer?.send(FrameType.Pong);
      case FrameType.Pong:
        return;
      default: {
        const handler = this.frameHandlers.get(type);
        if (handler === undefined) throw new ProtocolError({ reason: `unexpected frame type ${type} from the node` });
        handler(this.codec.decode(payload));
      }
    }
  }

  /** True from the node's Welcome until this connection drops. */
  private welcomedOnSocket = false;

  private async welcomed(welcome: {
    heartbeatMs: number;
    maxFrameBytes?: number;
    batchedAcks?: boolean;
    acksWithOutcomes?: boolean;
  }): Promise<void> {
    this.attempt = 0;
    this.welcomedOnSocket = true;
    if (typeof welcome.maxFrameBytes === "number") this.maxFrameBytes = welcome.maxFrameBytes;
    this.batchedAcks = welcome.batchedAcks === true;
    this.acksWithOutcomes = welcome.acksWithOutcomes === true;
    const socket = this.socket!;
    this.heartbeat = new Heartbeat(this.settings.heartbeatMs ?? welcome.heartbeatMs ?? DEFAULT_HEARTBEAT_MS, {
      ping: () => this.writer?.send(FrameType.Ping),
      silent: () => this.dropped(socket, "heartbeat timeout"),
    });
    this.heartbeat.start();
    try {
      for (const hook of this.onConnectedHooks) await hook();
    } catch (error) {
      this.settings.log?.(`after connecting to ${this.url}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (this.state !== "connecting") return;
    this.state = "ready";
    for (const [op, args] of this.kept.splice(0))
      this.writer!.send(FrameType.Request, this.codec.encode([0, op, args]));
    this.markReady();
  }

  private dropped(socket: Socket, reason: string): void {
    if (socket !== this.socket || this.state === "closed" || this.state === "waiting") return;
    const wasReady = this.state === "ready";
    this.state = "waiting";
    this.welcomedOnSocket = false;
    this.heartbeat?.stop();
    socket.destroy();
    if (wasReady) this.settings.log?.(`lost the connection to ${this.url} (${reason}); reconnecting`);
    if (wasReady) for (const hook of this.onDisconnectedHooks) hook(reason);
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      this.released();
      pending.reject(new ConnectionLostError({ url: this.url, op: pending.op, reason }));
    }
    if (wasReady) this.ready = this.newReadyPromise();
    const delay = Math.min(this.settings.reconnectMaxMs, this.settings.reconnectMinMs * 2 ** this.attempt++);
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  /** Close for good: pending requests are rejected, no reconnection. */
  close(): void {
    if (this.state === "closed") return;
    this.exitHooks.clear();
    process.off("exit", this.onProcessExit);
    this.state = "closed";
    this.welcomedOnSocket = false;
    this.heartbeat?.stop();
    clearTimeout(this.reconnectTimer);
    this.writer?.flush();
    this.socket?.end();
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(this.refusal ?? new ClientClosedError({ url: this.url }));
    }
    this.pending.clear();
    this.failReady(this.refusal ?? new ClientClosedError({ url: this.url }));
  }
}
