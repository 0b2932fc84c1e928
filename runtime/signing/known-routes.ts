/**
 * Which queues a signed message's routing reaches, as this app knows it: a
 * worker runs a signed message only from a queue its signed exchange and
 * routing key lead to, so a binding someone else added on the broker
 * (`bindQueue("audit-only", "tasks", "#")`) does not deliver signed
 * messages to a second pool of workers. The default exchange reaches the
 * queue its routing key names; a named exchange reaches the queues bound to
 * it through this app (its own `bindQueue` calls) or listed in
 * `signing.bindings`.
 *
 * @example
 * const routes = new KnownRoutes([{ queue: "audit", exchange: "tasks", pattern: "audit.#" }]);
 * routes.reaches({ exchange: "tasks", routingKey: "audit.login" }, "audit"); // true
 */
import type { ExchangeType } from "../../broker/transport.ts";
import { topicMatches } from "../../broker/topic.ts";

/** A binding the app's workers accept signed messages through: `queue` receives from `exchange` what `pattern` matches. */
export interface TrustedBinding {
  readonly queue: string;
  readonly exchange: string;
  /** The binding's pattern: a routing key (direct), a topic pattern (topic), or anything (fanout). */
  readonly pattern: string;
}

export class KnownRoutes {
  private readonly types = new Map<string, ExchangeType>();
  /** Per queue, per exchange: the patterns bound. */
  private readonly bindings = new Map<string, Map<string, Set<string>>>();

  constructor(bindings: readonly TrustedBinding[] = []) {
    for (const binding of bindings) this.bind(binding.queue, binding.exchange, binding.pattern);
  }

  declared(exchange: string, type: ExchangeType): void {
    this.types.set(exchange, type);
  }

  bind(queue: string, exchange: string, pattern: string): void {
    let byExchange = this.bindings.get(queue);
    if (byExchange === undefined) this.bindings.set(queue, (byExchange = new Map()));
    let patterns = byExchange.get(exchange);
    if (patterns === undefined) byExchange.set(exchange, (patterns = new Set()));
    patterns.add(pattern);
  }

  /** Whether a message signed with this exchange and routing key belongs on `queue`. */
  reaches(routing: { readonly exchange: string; readonly routingKey: string }, queue: string): boolean {
    if (routing.exchange === "") return routing.routingKey === queue;
    const patterns = this.bindings.get(queue)?.get(routing.exchange);
    if (patterns === undefined) return false;
    const type = this.types.get(routing.exchange);
    if (type === "fanout") return true;
    if (patterns.has(routing.routingKey)) return true;
    if (type === "direct") return false;
    for (const pattern of patterns) if (topicMatches(pattern, routing.routingKey)) return true;
    return false;
  }
}
