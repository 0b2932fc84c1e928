// The standalone broker node: an embedded broker served over TCP, made durable by a
// journal in an append-only log. A publish is confirmed only once the record holding it
// is durable (fsync before confirm by default, with group commit); on restart the log is
// replayed, so every confirmed and unacknowledged message is back and none that was
// acknowledged is.
import { randomUUID } from "node:crypto";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { Clock } from "../clock.ts";
import { lockDataDir } from "../log/data-dir-lock.ts";
import { type DurableLogInternals, type DurableLogOptions, openDurableLog } from "../log/durable-log.ts";
import { describeCorruption } from "../log/log-recovery.ts";
import { type LogGuest, recordsByOwner, SharedLog } from "../log/shared-log.ts";
import { EmbeddedBroker, RESOLVED } from "../embedded/embedded-broker.ts";
import type { BrokerJournal } from "../embedded/broker-journal.ts";
import { publishedEnvelopeBytes } from "./encoded-envelope.ts";
import { clampPriority, type Envelope } from "../envelope.ts";
import { NodeConnection, type ConnectionContext } from "./node-connection.ts";
import { NodeJournal, replay } from "./journal/node-journal.ts";
import { HeldCount, type HeldMessages } from "./journal/held-count.ts";
import { envelopeToWire } from "./protocol.ts";
import { type AnyOperation, brokerOperations, queueAdminOperations, type WireDeadLetter } from "./operations.ts";
import { OperationTable, type OperationHandlers } from "./operation-table.ts";
import { brokerNodeSettings, DEFAULT_NODE_PORT, type BrokerNodeSettings } from "./node-settings.ts";
import { DEFAULT_REVOCATION_TTL_MS } from "../revocations.ts";

export { DEFAULT_NODE_PORT };

/**
 * Settings of a broker node; every field is optional (defaults in node-settings.ts).
 *
 * @example
 * await BrokerNode.start({ port: 5690, dataDir: "./data", fsync: { intervalMs: 100 }, token: process.env.CELERITY_TOKEN });
 */
export interface BrokerNodeOptions {
  /** TCP port; 0 picks a free one. Default 5690. */
  readonly port?: number;
  /** Address to listen on. Default 127.0.0.1. */
  readonly host?: string;
  /** Directory of the durable log. Without it the node keeps everything in memory (nothing survives a restart). */
  readonly dataDir?: string;
  /** Clients must present this token in their handshake. An empty token means none. */
  readonly token?: string;
  /**
   * The token of administrators. With it, a client presenting `token` (or any
   * client, without one) may produce and consume only; revoking, binding a
   * queue to an exchange other than the runtime's own `celerity.*` ones,
   * purging, pausing, dead-letter requeues and discards, rate changes and
   * forgetting results need this token. Without it, every client may do everything.
   */
  readonly adminToken?: string;
  /**
   * Let a node listening on an address other machines can reach run without
   * a token. Without it such a node refuses to start. Default false.
   */
  readonly allowAnonymous?: boolean;
  /** Connections held at once; more are closed as they arrive. Default 10,000. */
  readonly maxConnections?: number;
  /** Connections held at once that have not completed their handshake. Default 256. */
  readonly maxUnauthenticatedConnections?: number;
  /** Largest frame accepted before the handshake completes. Default 64 KiB. */
  readonly maxHelloBytes?: number;
  /** A connection must complete its handshake within this. Default 10,000 ms. */
  readonly handshakeTimeoutMs?: number;
  /** A refusal for a wrong or missing token is sent after this delay, to slow down guessing. Default 1,000 ms. */
  readonly refusalDelayMs?: number;
  /**
   * Compact the log while running once it is larger than this and than four
   * times its size after the last compaction. Default 64 MiB.
   */
  readonly compactAtBytes?: number;
  /** Fsync policy of the log (see DurableLogOptions). Default "always". */
  readonly fsync?: DurableLogOptions["fsync"];
  /** Heartbeat interval; a connection silent for three intervals is closed. Default 5000 ms. */
  readonly heartbeatMs?: number;
  readonly maxFrameBytes?: number;
  /**
   * Flow control: past this many messages held, publishes wait (unconfirmed)
   * until consumers have taken some away, so producers slow down instead of
   * the node's memory growing without bound. Default 2,000,000.
   */
  readonly maxMessages?: number;
  /** Most dead letters each dead-letter queue keeps; past it the next in line is dropped and counted. Default 10,000. */
  readonly maxDeadLetters?: number;
  /** Most bytes of message bodies each dead-letter queue keeps, dropped the same way. Default 64 MiB. */
  readonly maxDeadLetterBytes?: number;
  /**
   * What delivery leases are timed by. Default the system clock; a test hands
   * in a virtual clock (`VirtualClock` of `celerity/testing`) to run a lease
   * out without waiting for it.
   */
  readonly clock?: Clock;
  readonly log?: (message: string) => void;
}

const brokerError =
  (log: (message: string) => void) =>
  (error: unknown, context: string): void =>
    log(`${context}: ${String(error)}`);

/** The node's broker, telling `journal` of every change; it does not pace senders, whom the network paces. */
const nodeBroker = (settings: BrokerNodeSettings, journal: BrokerJournal): EmbeddedBroker =>
  new EmbeddedBroker({
    ...settings.deadLetterBounds,
    journal,
    onError: brokerError(settings.log),
    paceSenders: false,
  });

/** How `BrokerNode.publishReceived` publishes envelopes a service received. */
export interface PublishReceivedOptions {
  /** Each envelope's msgpack bytes as they arrived (views into the request, used at once), for the journal to take as they are. */
  readonly encoded?: readonly Uint8Array[];
  /** Told the index of a refused envelope (and why) before the call rejects. */
  readonly refused?: (index: number, error: unknown) => Promise<unknown> | undefined;
  /**
   * A refused envelope does not fail the call: it is only told to `refused`,
   * and the call answers for the others (for requests answered per message).
   */
  readonly refusalsTold?: boolean;
}

/**
 * A running broker node (see above): `BrokerNode.start` listens, `stop` closes
 * every connection and the log. `startFullNode` in `celerity/node` also serves
 * results and rate limits, as `celerity broker` does.
 *
 * @example
 * const node = await BrokerNode.start({ port: 5690, dataDir: "./data" });
 * // createApp({ broker: "celerity://127.0.0.1:5690" }) in producers and workers
 * await node.stop();
 */
export class BrokerNode {
  readonly id = randomUUID();
  private readonly connections = new Set<NodeConnection>();
  private readonly operations = new OperationTable(mayRunAdmin);
  private server: Server | undefined;
  private releaseLock: (() => void) | undefined;
  private stopRevocations: (() => void) | undefined;
  private readonly log: (message: string) => void;

  private constructor(
    readonly broker: EmbeddedBroker,
    private readonly journal: HeldMessages,
    private readonly sharedLog: SharedLog | undefined,
    private readonly settings: BrokerNodeSettings,
  ) {
    this.log = settings.log;
    this.serveBroker();
  }

  /**
   * Open the log (recovering what it holds), then listen. `internals` are the
   * log's test seams (a faulty disk). With a data dir, `guests` keep their
   * records in the node's log (a full node's result store): each gets its own
   * back before the node listens, and one fsync covers theirs and the
   * journal's; without one they are not used.
   */
  static async start(
    options: BrokerNodeOptions = {},
    internals: DurableLogInternals = {},
    guests: readonly LogGuest[] = [],
  ): Promise<BrokerNode> {
    const settings = brokerNodeSettings(options);
    const log = settings.log;
    let node: BrokerNode;
    if (options.dataDir === undefined) {
      const journal = new HeldCount();
      const broker = nodeBroker(settings, journal);
      node = new BrokerNode(broker, journal, undefined, settings);
    } else {
      const lock = lockDataDir(options.dataDir);
      let broker: EmbeddedBroker | undefined;
      let journal: NodeJournal | undefined;
      const maxRecordBytes = Math.max(0, ...guests.map((guest) => guest.maxRecordBytes ?? 0));
      const {
        log: durableLog,
        records,
        report,
      } = await openDurableLog(
        options.dataDir,
        {
          fsync: settings.fsync,
          ...(maxRecordBytes > 0 ? { maxRecordBytes } : {}),
          onCorruption: (info) => log(describeCorruption(info)),
          onFailure: (error) => {
            broker?.pauseDelivering();
            log(
              `the log failed (${error.message}): publishes are refused and nothing is delivered until it is reopened, since acks cannot be recorded meanwhile; ` +
                "it reopens from what the last successful fsync covered, trying again after 100 ms, doubling to 5 s, until the disk takes writes",
            );
          },
          onReopenFailed: (error, attempts) =>
            log(`the log is not reopened yet (attempt ${attempts}): ${error.message}`),
          onReopen: (info) => {
            journal?.recordRefusedRemovals();
            for (const guest of guests) guest.reopened?.(info);
            broker?.resumeDelivering();
            log(
              `the log is written again after ${info.attempts} attempt(s) (it had failed: ${info.failure.message}); ` +
                `appends go to ${info.segment}: publishes are accepted and deliveries resume`,
            );
          },
        },
        internals,
      );
      const owners = recordsByOwner(records, 1 + Math.max(0, ...guests.map((guest) => guest.owner)), (reason) =>
        log(`log: ${reason}`),
      );
      const held = new NodeJournal(() => RESOLVED);
      journal = held;
      broker = nodeBroker(settings, journal);
      const summary = await replay(owners[0], broker, (reason) => log(`log: ${reason}`), Date.now(), journal);
      const shared = new SharedLog(durableLog, { compactAtBytes: settings.compactAtBytes, name: "the log", say: log });
      shared.share(0, () => held.snapshot());
      for (const guest of guests) {
        await guest.recover(
          owners[guest.owner],
          shared.share(guest.owner, () => guest.snapshot()),
        );
      }
      // Rewriting the log needs free space the size of what it holds: on a full disk, start from the log as it is.
      await durableLog.compact(shared.liveRecords()).catch((error: unknown) => {
        log(
          `the log was not compacted at start (it is used as it is): ${error instanceof Error ? error.message : String(error)}`,
        );
      });
      shared.compacted();
      journal.redirect((record) => durableLog.append(record));
      log(
        `recovered ${summary.messages} messages in ${summary.queues} declared queues and ${summary.revocations} revocations from ${owners[0].length} records` +
          (report.corrupted.length > 0 ? ` (${report.corrupted.length} corrupted records reported)` : ""),
      );
      node = new BrokerNode(broker, journal, shared, settings);
      node.releaseLock = () => lock.release();
    }
    await node.listen();
    return node;
  }

  /**
   * Publish from a service running on the node (the beat's `beat.fire`), as a
   * client's publish is: journaled, and resolved once durable.
   */
  publishDurably(envelope: Envelope, mandatory: boolean): Promise<void> {
    return this.durable(this.publish(envelope, mandatory, undefined)) ?? RESOLVED;
  }

  /**
   * Publish envelopes that arrived in a request to a service on the node (the
   * result service's send), as the node's own `publish` does: under flow
   * control, journaled, resolved once durable. Each envelope is published in
   * order; one refused (a mandatory message no queue takes) rejects the call
   * after the others are published, and `refused` is told its index first.
   */
  publishReceived(
    envelopes: readonly Envelope[],
    mandatory: boolean,
    options: PublishReceivedOptions = {},
  ): Promise<void> {
    const room = this.room();
    // Held for room, the request's bytes may have been reused by then: the envelopes are encoded afresh.
    return room === undefined
      ? this.publishAll(envelopes, mandatory, options.encoded, options)
      : room.then(() => this.publishAll(envelopes, mandatory, undefined, options));
  }

  private publishAll(
    envelopes: readonly Envelope[],
    mandatory: boolean,
    encoded: readonly Uint8Array[] | undefined,
    { refused, refusalsTold }: PublishReceivedOptions,
  ): Promise<void> {
    let refusals: Promise<unknown>[] | undefined;
    for (let index = 0; index < envelopes.length; index++) {
      const envelope = envelopes[index];
      // The body arrived as a view into a socket chunk: keep a copy of its own, not the whole chunk.
      const done = this.publish({ ...envelope, body: envelope.body.slice() }, mandatory, encoded?.[index]);
      if (done === RESOLVED) continue;
      (refusals ??= []).push(
        done.catch(async (error: unknown) => {
          await refused?.(index, error);
          if (!refusalsTold) throw error;
        }),
      );
    }
    const written = this.durable(undefined) ?? RESOLVED;
    return refusals === undefined ? written : Promise.all([written, ...refusals]).then(() => undefined);
  }

  /**
   * Serve a group of operations (declared with `operationGroup`) besides the
   * node's own: the runtime's result store and rate limits are served so.
   */
  serve<G extends Readonly<Record<string, AnyOperation>>>(group: G, handlers: OperationHandlers<G>): void {
    this.operations.add(group, handlers);
  }

  /** Let only connections holding the admin token (when the node has one) run these operations of a served group. */
  requireAdmin<G extends Readonly<Record<string, AnyOperation>>>(group: G, admin: readonly (keyof G)[]): void {
    this.operations.requireAdmin(group, admin);
  }

  get address(): AddressInfo {
    return this.server?.address() as AddressInfo;
  }

  get url(): string {
    return `celerity://${this.address.address}:${this.address.port}`;
  }

  private async listen(): Promise<void> {
    const context: ConnectionContext = {
      broker: this.broker,
      nodeId: this.id,
      token: this.settings.token,
      adminToken: this.settings.adminToken,
      signedClient: (connection) => this.warnSignedWithoutToken(connection),
      heartbeatMs: this.settings.heartbeatMs,
      maxFrameBytes: this.settings.maxFrameBytes,
      maxHelloBytes: Math.min(this.settings.maxHelloBytes, this.settings.maxFrameBytes),
      handshakeTimeoutMs: this.settings.handshakeTimeoutMs,
      refusalDelayMs: this.settings.refusalDelayMs,
      clock: this.settings.clock,
      authenticated: () => this.unauthenticated--,
      handle: (op, args, connection, replyWanted, payload) =>
        this.operations.run(op, args, connection, replyWanted, payload),
      log: this.log,
      closed: (connection) => {
        this.connections.delete(connection);
        if (connection.counted && !connection.handshaken) this.unauthenticated--;
      },
    };
    this.stopRevocations = this.broker.onRevoke((id, { terminate, ttlMs }) => {
      for (const connection of this.connections)
        connection.sendRevoked(id, terminate, ttlMs ?? DEFAULT_REVOCATION_TTL_MS);
    });
    const server = createServer((socket) => this.accept(socket, context));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.settings.port, this.settings.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.log(
      `listening on ${this.url}${this.sharedLog ? ` with data in ${this.settings.dataDir}` : " (in memory only)"}`,
    );
  }

  /** Connections that have not completed their handshake. */
  private unauthenticated = 0;
  private turnedAway = 0;
  private turnedAwayLogged = 0;

  /** Take a new connection, or close it at once when the node holds as many as it may. */
  private accept(socket: Socket, context: ConnectionContext): void {
    const full = this.connections.size >= this.settings.maxConnections;
    if (full || this.unauthenticated >= this.settings.maxUnauthenticatedConnections) {
      socket.on("error", () => {});
      socket.destroy();
      this.turnedAway++;
      // Logged at most once a second: a flood must not flood the log too.
      if (Date.now() - this.turnedAwayLogged >= 1_000) {
        this.turnedAwayLogged = Date.now();
        this.log(
          full
            ? `turned away ${this.turnedAway} connection(s): the node holds its maximum of ${this.settings.maxConnections} connections`
            : `turned away ${this.turnedAway} connection(s): ${this.unauthenticated} connections have not completed their handshake (maximum ${this.settings.maxUnauthenticatedConnections})`,
        );
        this.turnedAway = 0;
      }
      return;
    }
    this.unauthenticated++;
    const connection = new NodeConnection(socket, context);
    connection.counted = true;
    this.connections.add(connection);
  }

  private readonly roomWaiters: (() => void)[] = [];

  /** Resolves when the node holds fewer messages than its maximum (at once if it does already). */
  private room(): Promise<void> | undefined {
    const journal = this.journal;
    const max = this.settings.maxMessages;
    if (journal.held < max) return undefined;
    if (journal.onRemoved === undefined) {
      journal.onRemoved = () => {
        // Let producers in again once a tenth of the room is free, not on every single ack.
        if (journal.held > max * 0.9) return;
        for (const wake of this.roomWaiters.splice(0)) wake();
      };
    }
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /**
   * `done` once the journal record of the change just made is durable. Called
   * right after the (synchronously journalled) change, so the write it waits
   * for is that change's; the log makes records durable in order.
   */
  private afterDurable<T>(value: Promise<T>): Promise<T> {
    const write = this.journal.lastWrite;
    return write === undefined ? value : Promise.all([value, write]).then(([result]) => result);
  }

  /** A change's answer, given once the records it wrote are durable. */
  private afterDurableChange<T>(value: Promise<T>): Promise<T> {
    this.maybeCompact();
    return this.afterDurable(value);
  }

  /** Count a write towards the log's next look at its size (compaction runs while appends go on). */
  private maybeCompact(): void {
    this.sharedLog?.wrote();
  }

  /**
   * `done` once the change just made is durable. A change the broker applied
   * at once (`done` is the broker's shared resolved promise) answers with the
   * write's own promise, which every record of a group commit shares: no
   * promise of its own per publish.
   */
  private durable(done: Promise<unknown> | undefined): Promise<void> | undefined {
    this.maybeCompact();
    const write = this.journal.lastWrite;
    if (done === undefined || done === RESOLVED) return write;
    return Promise.all([done, write]).then(() => undefined);
  }

  /**
   * Publish, letting the journal take the envelope's bytes as they arrived
   * (`encoded`, when given) rather than encode the envelope again; a priority
   * the broker clamps changes the envelope, so it is encoded afresh.
   */
  private publish(envelope: Envelope, mandatory: boolean, encoded: Uint8Array | undefined): Promise<void> {
    const journal = this.journal;
    if (
      encoded === undefined ||
      clampPriority(envelope.priority) !== envelope.priority ||
      !(journal instanceof NodeJournal)
    )
      return this.broker.publish(envelope, { mandatory });
    journal.encodedAs(envelope, encoded);
    try {
      return this.broker.publish(envelope, { mandatory });
    } finally {
      journal.encodedAs(undefined, undefined);
    }
  }

  /** The transport contract over TCP: the node's own operations. */
  private serveBroker(): void {
    const { broker } = this;
    this.operations.add(brokerOperations, {
      publish: ([envelope, mandatory], _connection, _replyWanted, payload) => {
        // The body arrived as a view into a socket chunk: keep a copy of its own, not the whole chunk.
        const owned = { ...envelope, body: envelope.body.slice() };
        const room = this.room();
        if (room === undefined)
          return this.durable(this.publish(owned, mandatory === true, publishedEnvelopeBytes(payload)));
        // By then the payload, a view into a socket read, may have been reused: the envelope is encoded again.
        return room.then(() => this.durable(this.publish(owned, mandatory === true, undefined)));
      },
      publishMany: ([envelopes, mandatory]) => this.publishReceived(envelopes, mandatory === true),
      // Settled without an answer (the hot path): a later read's answer proves them durable (see afterDurable).
      ack: ([tag, deliveryTag], connection, replyWanted) => {
        connection.ack(tag, deliveryTag);
        return replyWanted ? this.durable(undefined) : this.maybeCompact();
      },
      acks: ([tag, deliveryTags], connection, replyWanted) => {
        connection.ackAll(tag, deliveryTags);
        return replyWanted ? this.durable(undefined) : this.maybeCompact();
      },
      nack: ([tag, deliveryTag, requeue, reason], connection, replyWanted) => {
        connection.nack(tag, deliveryTag, { requeue, ...(reason !== null ? { reason } : {}) });
        return replyWanted ? this.durable(undefined) : this.maybeCompact();
      },
      consume: ([queue, prefetch, leaseMs, marksStarted], connection) =>
        connection.consume(queue, prefetch, leaseMs ?? undefined, marksStarted === true),
      started: ([tag, deliveryTags], connection) => connection.started(tag, deliveryTags),
      renew: ([tag, deliveryTags], connection) => connection.renew(tag, deliveryTags),
      cancel: ([tag], connection) => connection.cancel(tag),
      declareQueue: ([name, options]) => this.durable(broker.declareQueue(name, options ?? {})),
      declareExchange: ([name, type]) => this.durable(broker.declareExchange(name, type)),
      bindQueue: ([queue, exchange, pattern]) => this.durable(broker.bindQueue(queue, exchange, pattern)),
      revoke: ([ids, options]) => this.durable(broker.revoke(ids, options ?? {})),
      revocations: () => broker.activeRevocations(),
      // Reads answer only once every change before them is durable: a reply then proves, say, that earlier acks are on disk.
      deadLetters: ([queue]) =>
        this.afterDurable(
          broker
            .deadLetters(queue)
            .then((letters) =>
              letters.map(
                (letter): WireDeadLetter => [letter.queue, letter.reason, letter.at, envelopeToWire(letter.envelope)],
              ),
            ),
        ),
      stats: ([queue]) => this.afterDurable(broker.stats(queue)),
    });
    this.operations.add(queueAdminOperations, {
      listQueues: () => this.afterDurable(broker.listQueues()),
      purge: ([queue]) => this.afterDurableChange(broker.purge(queue)),
      pause: ([queue]) => this.durable(broker.pause(queue)),
      resume: ([queue]) => this.durable(broker.resume(queue)),
      requeueDeadLetters: ([queue, ids]) => this.afterDurableChange(broker.requeueDeadLetters(queue, ids ?? undefined)),
      discardDeadLetters: ([queue, ids]) => this.afterDurableChange(broker.discardDeadLetters(queue, ids ?? undefined)),
    });
    this.operations.requireAdmin(brokerOperations, ["revoke", "bindQueue"]);
    this.operations.requireAdmin(queueAdminOperations, [
      "purge",
      "pause",
      "resume",
      "requeueDeadLetters",
      "discardDeadLetters",
    ]);
  }

  private warnedSigned = false;

  /** Say loudly, once, that signed apps use a node anyone can reach: signatures stop forgery, not what the node lets clients do. */
  private warnSignedWithoutToken(connection: NodeConnection): void {
    if (this.warnedSigned || this.settings.token !== undefined || this.settings.adminToken !== undefined) return;
    this.warnedSigned = true;
    this.log(
      `WARNING: ${connection.name} runs in signed mode, but this node has no token: anyone who can connect can ` +
        "take and hold messages, revoke tasks, change rate limits, bind queues, purge them and rewrite results. " +
        "Give the node a token and an admin token (--token-file, --admin-token-file; see docs/security.md).",
    );
  }

  /** Stop listening, close every connection (their unacked deliveries are requeued and logged), flush and close the log. */
  async stop(): Promise<void> {
    this.stopRevocations?.();
    await this.sharedLog?.compacting;
    for (const connection of [...this.connections]) connection.close("the node is stopping");
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await this.broker.close();
    await this.sharedLog?.log.close();
    this.releaseLock?.();
    this.log("stopped");
  }
}

/**
 * What a connection without the admin role may still do among admin
 * operations: bind a queue to the runtime's own broadcast exchanges
 * (`celerity.control`, `celerity.reply`, `celerity.events`), as every worker
 * and control client does; tasks are never routed through those.
 */
const mayRunAdmin = (name: string, args: readonly unknown[]): string | undefined => {
  if (name === "bindQueue" && typeof args[1] === "string" && args[1].startsWith("celerity.")) return undefined;
  return "it needs the node's admin token";
};
