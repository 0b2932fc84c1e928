/**
 * The transport's connection to RabbitMQ, kept alive: it connects, notices a
 * lost connection (a socket error, a missed heartbeat, the server closing it),
 * and reconnects with exponential backoff, running each `onConnected` hook on
 * the new connection before anything else uses it (the transport reopens its
 * consumers there). Operations wait for a connection; they fail with
 * AmqpConnectionError only when none came within `waitMs`.
 *
 * @module
 */
import { connect, type Channel, type ChannelModel, type ConfirmChannel } from "amqplib";
import { BrokerClosedError } from "../errors.ts";
import { AmqpConnectionError } from "./amqp-errors.ts";
import { redactUrl, type ResolvedAmqpOptions } from "./amqp-options.ts";

/** Attempts at work on a channel of its own before its error is the caller's. */
const MAX_CHANNEL_ATTEMPTS = 5;

export class AmqpLink {
  /** Incremented on every new connection: a delivery tag from an older one is stale. */
  generation = 0;
  private connection: ChannelModel | undefined;
  private publisher: Promise<ConfirmChannel> | undefined;
  /** The publish channel once open: the publish path takes it without waiting on a promise. */
  openPublisher: ConfirmChannel | undefined;
  private closed = false;
  /** Why the last connection attempt failed or the last connection ended, for error messages. */
  lastError = "not connected yet";
  private waiting: { resolve: (connection: ChannelModel) => void; reject: (error: Error) => void }[] = [];
  private readonly hooks: ((generation: number) => Promise<void>)[] = [];
  private delayMs: number;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ResolvedAmqpOptions) {
    this.delayMs = options.reconnectInitialMs;
  }

  /** Begin connecting; the link keeps itself connected until `close`. */
  start(): void {
    void this.attempt();
  }

  get connected(): boolean {
    return this.connection !== undefined;
  }

  /** Run `hook` (awaited) after every reconnection, before waiting operations resume. */
  onConnected(hook: (generation: number) => Promise<void>): void {
    this.hooks.push(hook);
  }

  /** The live connection, waiting (at most `connectTimeoutMs`) for one. */
  current(operation: string): Promise<ChannelModel> {
    if (this.closed) return Promise.reject(new BrokerClosedError({ operation }));
    if (this.connection !== undefined) return Promise.resolve(this.connection);
    return new Promise((resolve, reject) => {
      const entry = {
        resolve: (connection: ChannelModel) => {
          clearTimeout(timer);
          resolve(connection);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiting = this.waiting.filter((w) => w !== entry);
        reject(
          new AmqpConnectionError({
            url: redactUrl(this.options.url),
            reason: `no connection within ${this.options.connectTimeoutMs} ms; last error: ${this.lastError}`,
          }),
        );
      }, this.options.connectTimeoutMs);
      this.waiting.push(entry);
    });
  }

  /** The confirm channel every publish goes through; a new one after a channel error or a reconnection. */
  async publishChannel(): Promise<ConfirmChannel> {
    if (this.publisher !== undefined) return this.publisher;
    const connection = await this.current("publish");
    const opening = connection.createConfirmChannel().then((channel) => {
      channel.on("error", () => {});
      channel.on("close", () => {
        if (this.publisher === opening) this.publisher = undefined;
        if (this.openPublisher === channel) this.openPublisher = undefined;
      });
      if (this.publisher === opening) this.openPublisher = channel;
      return channel;
    });
    this.publisher = opening;
    opening.catch(() => {
      if (this.publisher === opening) this.publisher = undefined;
    });
    return opening;
  }

  /**
   * Run `use` on a channel of its own, closed afterwards. Declarations and
   * checks go here: a refusal closes the channel it happened on, and this way
   * never one that other work shares. Work cut short by a lost connection
   * (an error without a reply code) runs again on the next one.
   */
  async withChannel<T>(operation: string, use: (channel: Channel) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const connection = await this.current(operation);
      try {
        return await this.once(connection, use);
      } catch (error) {
        const refused = typeof (error as { code?: unknown } | null)?.code === "number";
        if (refused || this.closed || attempt >= MAX_CHANNEL_ATTEMPTS) throw error;
        // Wait for the connection's loss to be noticed, then for the next one.
        if (this.connection === connection)
          await new Promise((resolve) => setTimeout(resolve, this.options.reconnectInitialMs));
      }
    }
  }

  private async once<T>(connection: ChannelModel, use: (channel: Channel) => Promise<T>): Promise<T> {
    const channel = await connection.createChannel();
    let failed = false;
    channel.on("error", () => {
      failed = true;
    });
    try {
      return await use(channel);
    } finally {
      if (!failed) await channel.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const waiter of this.waiting.splice(0))
      waiter.reject(new BrokerClosedError({ operation: "use the connection" }));
    const connection = this.connection;
    this.connection = undefined;
    this.publisher = undefined;
    this.openPublisher = undefined;
    if (connection !== undefined) await connection.close().catch(() => {});
  }

  private async attempt(): Promise<void> {
    if (this.closed) return;
    let connection: ChannelModel;
    try {
      const url = new URL(this.options.url);
      url.searchParams.set("heartbeat", String(this.options.heartbeatSeconds));
      connection = await connect(url.toString(), {
        clientProperties: { connection_name: this.options.connectionName },
      });
    } catch (error) {
      this.lastError = error instanceof Error ? error.message : String(error);
      return this.retry();
    }
    if (this.closed) {
      await connection.close().catch(() => {});
      return;
    }
    connection.on("error", (error: Error) => {
      this.lastError = error.message;
    });
    connection.on("close", () => {
      if (this.connection !== connection) return;
      this.connection = undefined;
      this.publisher = undefined;
      this.openPublisher = undefined;
      if (this.closed) return;
      this.options.log(`RabbitMQ connection to ${redactUrl(this.options.url)} lost (${this.lastError}); reconnecting`);
      this.retry();
    });
    this.generation++;
    this.connection = connection;
    this.publisher = undefined;
    this.openPublisher = undefined;
    try {
      for (const hook of this.hooks) await hook(this.generation);
    } catch (error) {
      this.lastError = `recovering after reconnection: ${error instanceof Error ? error.message : String(error)}`;
      this.options.log(`RabbitMQ connection to ${redactUrl(this.options.url)}: ${this.lastError}`);
      // Start over on a fresh connection rather than run half-recovered.
      this.connection = undefined;
      await connection.close().catch(() => {});
      return this.retry();
    }
    if (this.connection !== connection) return;
    this.delayMs = this.options.reconnectInitialMs;
    for (const waiter of this.waiting.splice(0)) waiter.resolve(connection);
  }

  private retry(): void {
    if (this.closed) return;
    const delay = this.delayMs * (0.8 + Math.random() * 0.4);
    this.delayMs = Math.min(this.options.reconnectMaxMs, Math.max(1, this.delayMs * 2));
    // Not unref'd: a worker with nothing else to do must stay up until RabbitMQ is back.
    this.retryTimer = setTimeout(() => void this.attempt(), delay);
  }
}
