// The client's Transport and QueueAdmin over a broker node: the embedded broker's contract
// across TCP, with consumers and declarations restored after every reconnection.
import { repeatEvery, type RepeatingTimer } from "../../clock.ts";
import type { DeadLetter, Delivery, Envelope } from "../../envelope.ts";
import { DeliveryTags } from "../../delivery-tags.ts";
import { NodeClient, type NodeClientOptions } from "./node-client.ts";
import { FrameType, envelopeFromWire, envelopeToWire } from "../protocol.ts";
import { brokerOperations as ops, queueAdminOperations as admin } from "../operations.ts";
import { Revocations } from "../../revocations.ts";
import type { QueueAdmin, QueueInfo } from "../../queue-admin.ts";
import {
  DEFAULT_LEASE_MS,
  type ConsumeOptions,
  type Consumer,
  type DeliveryHandler,
  type ExchangeType,
  type OutcomeAck,
  type PublishOptions,
  type QueueOptions,
  type QueueStats,
  type RevocationOptions,
  type Transport,
} from "../../transport.ts";

/**
 * The Transport of a broker node over TCP: the same contract as the
 * embedded broker, so the runtime works unchanged. Consumers survive
 * reconnection: after the node comes back (or the connection recovers) each
 * consumer is opened again on the node under a new tag; deliveries of the
 * lost connection were requeued by the node, and acking them is a no-op.
 *
 * @example
 * const transport = await NodeTransport.connect("celerity://127.0.0.1:5690", { token });
 */
export class NodeTransport implements Transport, QueueAdmin {
  private readonly consumers = new Map<string, RemoteConsumer>();
  private readonly byRemoteTag = new Map<string, RemoteConsumer>();
  private readonly early = new Map<string, Delivery[]>();
  /** The node's revocations, mirrored for the synchronous `isRevoked` (its own listeners stay empty: ours are told only of new ones). */
  private readonly revoked = new Revocations();
  private readonly revokeListeners = new Set<(id: string, options: { readonly terminate: boolean }) => void>();
  private localTags = 0;
  /**
   * Declarations this transport made that a node restart (in memory) or a
   * lost connection (auto-delete queues go with it) would take away: made
   * again on every reconnection, before consumers are reopened.
   */
  private readonly exchangesDeclared = new Map<string, ExchangeType>();
  private readonly transientQueues = new Map<string, { options: QueueOptions; bindings: Set<string> }>();

  private constructor(readonly client: NodeClient) {
    client.onFrame(FrameType.Deliver, (payload) =>
      this.onDeliver(payload as [string, number, number, string, unknown]),
    );
    client.onFrame(FrameType.Revoked, (payload) => {
      const [id, terminate, ttlMs] = payload as [string, boolean, number];
      this.revoked.revoke(id, ttlMs);
      for (const listener of this.revokeListeners) listener(id, { terminate });
    });
    client.onConnected(async () => {
      const active = await client.callNow(ops.revocations, []);
      for (const [id, ttlMs] of active) this.revoked.revoke(id, ttlMs);
      // A new connection: the node's consumer tags start afresh, and nothing of the old one can still arrive.
      this.byRemoteTag.clear();
      this.early.clear();
      await this.redeclare();
      for (const consumer of this.consumers.values()) await consumer.reopen();
    });
  }

  /** Connect (with the handshake) and return the transport; it reconnects by itself afterwards. */
  static async connect(url: string, options: NodeClientOptions = {}): Promise<NodeTransport> {
    const transport = NodeTransport.create(url, options);
    await transport.ready;
    return transport;
  }

  /** Start connecting and return at once; calls wait for the connection. `ready` settles with the first handshake. */
  static create(url: string, options: NodeClientOptions = {}): NodeTransport {
    const transport = new NodeTransport(new NodeClient(url, options));
    transport.ready = transport.client.start();
    transport.ready.catch(() => {});
    return transport;
  }

  /** Settles once the first connection is made (or refused). */
  ready: Promise<void> = Promise.resolve();

  async declareQueue(name: string, options: QueueOptions = {}): Promise<void> {
    await this.client.call(ops.declareQueue, [name, options]);
    if (options.autoDelete === true && !this.transientQueues.has(name))
      this.transientQueues.set(name, { options, bindings: new Set() });
  }
  async declareExchange(name: string, type: ExchangeType): Promise<void> {
    await this.client.call(ops.declareExchange, [name, type]);
    this.exchangesDeclared.set(name, type);
  }
  async bindQueue(queue: string, exchange: string, pattern: string): Promise<void> {
    await this.client.call(ops.bindQueue, [queue, exchange, pattern]);
    this.transientQueues.get(queue)?.bindings.add(`${exchange}\u0000${pattern}`);
  }

  private async redeclare(): Promise<void> {
    for (const [name, type] of this.exchangesDeclared) await this.client.callNow(ops.declareExchange, [name, type]);
    for (const [queue, { options, bindings }] of this.transientQueues) {
      await this.client.callNow(ops.declareQueue, [queue, options]);
      for (const binding of bindings) {
        const [exchange, pattern] = binding.split("\u0000");
        await this.client.callNow(ops.bindQueue, [queue, exchange, pattern]);
      }
    }
  }
  async publish(envelope: Parameters<Transport["publish"]>[0], options?: PublishOptions): Promise<void> {
    await this.client.call(ops.publish, [envelopeToWire(envelope), options?.mandatory === true]);
  }

  /** Every envelope in one `publishMany` request, confirmed once all are durable. */
  async publishMany(envelopes: readonly Envelope[], options?: PublishOptions): Promise<void> {
    await this.client.call(ops.publishMany, [envelopes.map(envelopeToWire), options?.mandatory === true]);
  }

  async consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer> {
    const consumer: RemoteConsumer = new RemoteConsumer(
      `remote-${++this.localTags}`,
      queue,
      handler,
      options.prefetch,
      options.leaseMs ?? DEFAULT_LEASE_MS,
      options.marksStarted === true,
      this.client,
      (previousTag) => this.adopt(consumer, previousTag),
      () => {
        this.consumers.delete(consumer.tag);
        this.byRemoteTag.delete(consumer.remoteTag);
        // Its last consumer gone, an auto-delete queue is gone from the node too.
        if (![...this.consumers.values()].some((other) => other.queue === queue)) this.transientQueues.delete(queue);
      },
    );
    // Listed for reopening only once open: a first connection made meanwhile would otherwise open it twice.
    await consumer.reopen(false);
    this.consumers.set(consumer.tag, consumer);
    setImmediate(() => consumer.start());
    return consumer;
  }

  async revoke(ids: readonly string[], options: RevocationOptions = {}): Promise<void> {
    await this.client.call(ops.revoke, [ids, options]);
    for (const id of ids) this.revoked.revoke(id, options.ttlMs);
  }

  isRevoked(id: string): boolean {
    return this.revoked.has(id);
  }

  /** The revocations in force as this transport mirrors them, with the ms each has left. */
  activeRevocations(): [id: string, ttlMs: number][] {
    return this.revoked.active();
  }

  onRevoke(listener: (id: string, options: { readonly terminate: boolean }) => void): () => void {
    const subscription = (id: string, options: { readonly terminate: boolean }) => listener(id, options);
    this.revokeListeners.add(subscription);
    return () => {
      this.revokeListeners.delete(subscription);
    };
  }

  onConnectionLost(listener: (reason: string) => void): () => void {
    // Subscribed while the connection is already down: its deliveries are back in their queues now, so say so at once.
    if (!this.client.connected) queueMicrotask(() => listener("the connection to the node is down"));
    return this.client.onDisconnected(listener);
  }

  async deadLetters(queue: string): Promise<readonly DeadLetter[]> {
    const letters = await this.client.call(ops.deadLetters, [queue]);
    return letters.map(([from, reason, at, envelope]) => ({
      queue: from,
      reason,
      at,
      envelope: envelopeFromWire(envelope),
    }));
  }

  async stats(queue: string): Promise<QueueStats> {
    return this.client.call(ops.stats, [queue]);
  }

  async listQueues(): Promise<readonly QueueInfo[]> {
    return this.client.call(admin.listQueues, []);
  }
  async purge(queue: string): Promise<number> {
    return this.client.call(admin.purge, [queue]);
  }
  async pause(queue: string): Promise<void> {
    await this.client.call(admin.pause, [queue]);
  }
  async resume(queue: string): Promise<void> {
    await this.client.call(admin.resume, [queue]);
  }
  async requeueDeadLetters(queue: string, ids?: readonly string[]): Promise<number> {
    return this.client.call(admin.requeueDeadLetters, [queue, ids ?? null]);
  }
  async discardDeadLetters(queue: string, ids?: readonly string[]): Promise<number> {
    return this.client.call(admin.discardDeadLetters, [queue, ids ?? null]);
  }

  async close(): Promise<void> {
    for (const consumer of [...this.consumers.values()]) await consumer.cancel().catch(() => {});
    this.client.close();
  }

  private onDeliver([remoteTag, deliveryTag, deliveryCount, queue, envelope]: [
    string,
    number,
    number,
    string,
    unknown,
  ]): void {
    const delivery: Delivery = {
      envelope: envelopeFromWire(envelope),
      queue,
      deliveryTag,
      redelivered: deliveryCount > 1,
      deliveryCount,
    };
    const consumer = this.byRemoteTag.get(remoteTag);
    if (consumer !== undefined) return consumer.receive(delivery);
    // The node's answer to `consume` and its first deliveries can arrive in one read, before the
    // consumer learns its tag: hold them for it.
    let early = this.early.get(remoteTag);
    if (early === undefined) this.early.set(remoteTag, (early = []));
    early.push(delivery);
  }

  /** Called by a consumer once the node has given it `remoteTag`. */
  private adopt(consumer: RemoteConsumer, previousTag: string): void {
    // Only if still ours: after a node restart another consumer may have been given that tag.
    if (this.byRemoteTag.get(previousTag) === consumer) this.byRemoteTag.delete(previousTag);
    this.byRemoteTag.set(consumer.remoteTag, consumer);
    const early = this.early.get(consumer.remoteTag);
    if (early === undefined) return;
    this.early.delete(consumer.remoteTag);
    for (const delivery of early) consumer.receive(delivery);
  }
}

/**
 * A consumer on the node, seen from the client. Delivery tags are the node's,
 * qualified by the connection they came on: after a reconnection, a tag of
 * the old connection is stale and settling it does nothing (the node has
 * already requeued that delivery).
 */
class RemoteConsumer implements Consumer {
  remoteTag = "";
  private cancelled = false;
  /**
   * Tags handed to the runtime are local numbers mapped to the node's tags of
   * the current connection; they are forgotten on reconnection, so a stale
   * tag cannot ack some other delivery that reused its number.
   */
  private readonly nodeTags = new DeliveryTags<number>();
  private held: Delivery[] | undefined = [];
  private readonly renewal: RepeatingTimer;

  constructor(
    readonly tag: string,
    readonly queue: string,
    private readonly handler: DeliveryHandler,
    private readonly prefetch: number,
    private readonly leaseMs: number,
    private readonly marksStarted: boolean,
    private readonly client: NodeClient,
    private readonly adopted: (previousTag: string) => void,
    private readonly forget: () => void,
  ) {
    if (marksStarted) this.forgetExitHook = client.beforeExit(this.sendStartMarks);
    this.acksPerRequest = Math.max(1, Math.floor(prefetch / 4));
    // Three renewals per lease: one lost or late renewal never costs a delivery.
    this.renewal = repeatEvery(client.clock, Math.max(10, Math.floor(leaseMs / 3)), () => this.renewLeases());
  }

  /** Extend, on the node, the lease of every delivery this process still holds (however long its task runs). */
  private renewLeases(): void {
    if (this.nodeTags.size === 0 || this.remoteTag === "") return;
    this.client.tell(ops.renew, [this.remoteTag, this.nodeTags.values()]);
  }

  /** Open (again) on the node. `reconnecting`: called while the connection is being set up, before it counts as ready. */
  async reopen(reconnecting = true): Promise<void> {
    if (this.cancelled) return;
    this.nodeTags.clear();
    const previousTag = this.remoteTag;
    const args: [string, number, number, boolean] = [this.queue, this.prefetch, this.leaseMs, this.marksStarted];
    this.remoteTag = await (reconnecting
      ? this.client.callNow(ops.consume, args)
      : this.client.call(ops.consume, args));
    this.adopted(previousTag);
  }

  /** Let deliveries through; until then they are held (the contract: none before consume() has resolved). */
  start(): void {
    const held = this.held;
    this.held = undefined;
    for (const delivery of held ?? []) this.receive(delivery);
  }

  receive(delivery: Delivery): void {
    if (this.held !== undefined) {
      this.held.push(delivery);
      return;
    }
    const local = this.nodeTags.add(delivery.deliveryTag);
    this.handler({ ...delivery, deliveryTag: local });
  }

  /** Start marks not yet sent: one request per event-loop turn carries them all. */
  private startMarks: number[] = [];

  markStarted(deliveryTag: number): void {
    const nodeTag = this.nodeTags.get(deliveryTag);
    if (nodeTag === undefined || !this.marksStarted) return;
    // Sent at the end of this run, ahead of the acks; the client also sends them if a task ends the process first (see NodeClient.beforeExit).
    if (this.startMarks.length === 0) this.client.sendSoon(this.sendStartMarks);
    this.startMarks.push(nodeTag);
  }

  private readonly sendStartMarks = (): void => {
    if (this.startMarks.length === 0) return;
    const marks = this.startMarks;
    this.startMarks = [];
    this.client.tell(ops.started, [this.remoteTag, marks]);
  };

  /**
   * Acks not yet sent: one request carries them, at the end of the run that
   * made them, once there are `acksPerRequest`, or before anything else this
   * client sends.
   */
  private acks: number[] = [];
  /**
   * A quarter of the prefetch: the node refills that much of the window
   * while this process works through the rest of a read, rather than the
   * two sides taking turns, a whole window at a time.
   */
  private readonly acksPerRequest: number;

  ack(deliveryTag: number): void {
    const tag = this.current(deliveryTag);
    if (tag === undefined) return;
    if (!this.client.batchedAcks) return this.client.tell(ops.ack, [this.remoteTag, tag]);
    if (this.acks.length === 0) this.client.sendSoon(this.sendAcks);
    this.acks.push(tag);
    // Sends these acks, after the start marks gathered before them.
    if (this.acks.length >= this.acksPerRequest) this.client.flush();
  }

  private readonly sendAcks = (): void => {
    if (this.acks.length === 0) return;
    const tags = this.acks;
    this.acks = [];
    this.client.tell(ops.acks, [this.remoteTag, tags]);
  };

  outcomeAck(deliveryTag: number): OutcomeAck | undefined {
    if (!this.client.acksWithOutcomes) return undefined;
    const nodeTag = this.nodeTags.get(deliveryTag);
    const via = this.client.connection;
    return nodeTag === undefined || via === undefined
      ? undefined
      : { via, consumerTag: this.remoteTag, deliveryTag: nodeTag };
  }

  ackedWithOutcome(deliveryTag: number): void {
    this.nodeTags.take(deliveryTag);
  }

  nack(deliveryTag: number, options: { readonly requeue: boolean; readonly reason?: string }): void {
    const tag = this.current(deliveryTag);
    if (tag !== undefined) this.client.tell(ops.nack, [this.remoteTag, tag, options.requeue, options.reason ?? null]);
  }

  private forgetExitHook: (() => void) | undefined;

  async cancel(): Promise<void> {
    if (this.cancelled) return;
    this.cancelled = true;
    this.renewal.stop();
    this.forgetExitHook?.();
    this.forget();
    if (this.client.connected) await this.client.call(ops.cancel, [this.remoteTag]);
  }

  /** The node's tag for a delivery made on the current connection, or undefined for a stale one. */
  private current(deliveryTag: number): number | undefined {
    return this.nodeTags.take(deliveryTag);
  }
}
