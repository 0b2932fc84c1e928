// An exchange of the embedded broker and its bindings: routing a key to its target queues
// (direct, topic, fanout), with topic routes cached per key.
import { topicMatches } from "../topic.ts";
import type { ExchangeType } from "../transport.ts";

/** Routing keys remembered per exchange before the route cache starts over. */
const ROUTE_CACHE_LIMIT = 4096;

const NO_TARGETS: readonly never[] = Object.freeze([]);

/**
 * A declared exchange and its bindings: given a routing key it returns the
 * targets (queues) a message goes to, each at most once however many of its
 * bindings match. `direct` matches the key exactly, `topic` per AMQP
 * (`*` one word, `#` zero or more), `fanout` ignores the key. Topic results are
 * cached per routing key (the cache is cleared on every bind), so routing a
 * recurring key is a map look-up.
 *
 * @example
 * const ex = new Exchange<string>("events", "topic");
 * ex.bind("audit", "#");
 * ex.bind("orders", "order.*");
 * ex.route("order.created"); // ["audit", "orders"]
 */
export class Exchange<T> {
  private readonly bindings: { readonly target: T; readonly pattern: string }[] = [];
  private readonly cache = new Map<string, readonly T[]>();
  private fanoutTargets: readonly T[] = NO_TARGETS;

  constructor(
    readonly name: string,
    readonly type: ExchangeType,
  ) {}

  /** Add a binding; binding the same target with the same pattern twice is a no-op. */
  bind(target: T, pattern: string): void {
    if (this.bindings.some((b) => b.target === target && b.pattern === pattern)) return;
    this.bindings.push({ target, pattern });
    this.cache.clear();
    if (this.type === "fanout" && !this.fanoutTargets.includes(target)) {
      this.fanoutTargets = [...this.fanoutTargets, target];
    }
  }

  /** Remove every binding of `target` (its queue was deleted). */
  unbind(target: T): void {
    for (let i = this.bindings.length - 1; i >= 0; i--)
      if (this.bindings[i].target === target) this.bindings.splice(i, 1);
    this.cache.clear();
    this.fanoutTargets = this.fanoutTargets.filter((t) => t !== target);
  }

  /** The targets a message with `routingKey` goes to, in binding order; empty when none match. */
  route(routingKey: string): readonly T[] {
    if (this.type === "fanout") return this.fanoutTargets;
    const cached = this.cache.get(routingKey);
    if (cached !== undefined) return cached;
    const matches = this.type === "topic" ? topicMatches : exactMatch;
    let targets: T[] | undefined;
    for (const { target, pattern } of this.bindings) {
      if (!matches(pattern, routingKey)) continue;
      targets ??= [];
      if (!targets.includes(target)) targets.push(target);
    }
    const result = targets ?? NO_TARGETS;
    if (this.cache.size >= ROUTE_CACHE_LIMIT) this.cache.clear();
    this.cache.set(routingKey, result);
    return result;
  }
}

const exactMatch = (pattern: string, routingKey: string): boolean => pattern === routingKey;
