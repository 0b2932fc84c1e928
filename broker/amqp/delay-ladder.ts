/**
 * Delayed delivery without a server plugin and without holding anything in a
 * worker's memory: a ladder of queues, level n holding each message for
 * exactly 2^n ms (a per-queue `x-message-ttl`, so every message in a level
 * expires in the order it entered and none blocks another). A message
 * delayed by d ms enters at the level of d's highest set bit and, each time
 * a level's ttl runs out, is dead-lettered to the next level its delay needs
 * (a headers exchange per level reads the bit), skipping the levels whose bit
 * is 0. After level 0 it reaches the ladder's out exchange, which hands it to
 * the exchange it was published to (or, for the default exchange, to its
 * queue), routed by its own routing key as if published at its eta.
 *
 * Level n's TTL counts from when the message entered it, so the sum of the
 * levels it passes is the delay and a message is never delivered before its
 * eta; each hop adds about a millisecond. 36 levels cover delays up to about
 * two years; messages sit in durable queues, so a broker restart keeps them.
 *
 * @module
 */
import type { Channel } from "amqplib";
import { InvalidArgumentError } from "../errors.ts";
import { ladderQueueArguments, type QueueType } from "./queue-arguments.ts";

/** Levels 0..LEVELS-1: the longest delay is 2^LEVELS - 1 ms (about 2.2 years). */
export const LEVELS = 36;
export const MAX_DELAY_MS = 2 ** LEVELS - 1;

/** The ladder's names under a prefix. */
export class DelayLadder {
  constructor(
    readonly prefix: string,
    private readonly queueType: QueueType = "classic",
  ) {}

  /** Level n's queue and its headers exchange share a name (RabbitMQ keeps queues and exchanges apart). */
  level(n: number): string {
    return `${this.prefix}.delay.${this.queueType === "quorum" ? "q" : ""}${n}`;
  }

  get out(): string {
    return `${this.prefix}.delay.out`;
  }

  /**
   * Where to publish a message delayed by `delayMs` (a positive integer) and
   * the routing headers it carries: one bit header per level it can pass, and
   * the route the out exchange hands it on by.
   */
  entry(delayMs: number, route: string): { exchange: string; headers: Record<string, string> } {
    if (!Number.isInteger(delayMs) || delayMs < 1 || delayMs > MAX_DELAY_MS) {
      throw new InvalidArgumentError({
        argument: "eta",
        reason: `a delay must be between 1 ms and ${MAX_DELAY_MS} ms (about two years), got ${delayMs} ms`,
      });
    }
    const top = Math.floor(Math.log2(delayMs));
    const headers: Record<string, string> = { [ROUTE_HEADER]: route };
    // Bits above 2^31 are beyond 32-bit operators: read them by division.
    for (let n = 0; n <= top; n++) headers[bitHeader(n)] = Math.floor(delayMs / 2 ** n) % 2 === 1 ? "1" : "0";
    return { exchange: this.level(top), headers };
  }

  /** Declare the whole ladder (idempotent): every level's queue and exchange, and the bindings between them. */
  async declare(channel: Channel): Promise<void> {
    await channel.assertExchange(this.out, "headers", { durable: true });
    const pending: Promise<unknown>[] = [];
    for (let n = 0; n < LEVELS; n++) {
      const name = this.level(n);
      const next = n === 0 ? this.out : this.level(n - 1);
      pending.push(
        channel.assertExchange(name, "headers", { durable: true }),
        channel.assertQueue(name, { durable: true, arguments: ladderQueueArguments(this.queueType, 2 ** n, next) }),
      );
    }
    await Promise.all(pending);
    const bindings: Promise<unknown>[] = [];
    for (let n = 0; n < LEVELS; n++) {
      const name = this.level(n);
      const next = n === 0 ? this.out : this.level(n - 1);
      bindings.push(
        channel.bindQueue(name, name, "", { "x-match": "all", [bitHeader(n)]: "1" }),
        channel.bindExchange(next, name, "", { "x-match": "all", [bitHeader(n)]: "0" }),
      );
    }
    await Promise.all(bindings);
  }

  /** Let the out exchange hand messages for `exchange` ("" for the default exchange, then `queue`) to it. */
  async bindRoute(channel: Channel, exchange: string, queue: string): Promise<void> {
    if (exchange === "")
      await channel.bindQueue(queue, this.out, "", { "x-match": "all", [ROUTE_HEADER]: routeOf("", queue) });
    else
      await channel.bindExchange(exchange, this.out, "", {
        "x-match": "all",
        [ROUTE_HEADER]: routeOf(exchange, queue),
      });
  }

  /** Every level's queue: the messages waiting in them are the transport's delayed messages. */
  queues(): string[] {
    return Array.from({ length: LEVELS }, (_, n) => this.level(n));
  }
}

/** The route a delayed message is handed on by: its exchange, or for the default exchange its queue. */
export const routeOf = (exchange: string, routingKey: string): string =>
  exchange === "" ? `queue:${routingKey}` : `exchange:${exchange}`;

// Not "x-" names: a headers exchange ignores binding arguments that start with "x-".
const ROUTE_HEADER = "celerity-delay-route";
const bitHeader = (n: number): string => `celerity-delay-${n}`;
