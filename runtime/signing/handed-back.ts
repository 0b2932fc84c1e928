/**
 * A message a worker hands back to its queue (a rate-limited task past what
 * the worker holds, due again later) keeps its original signature and
 * signing time: the worker does not sign someone else's message anew. It
 * publishes a wrapper, signed by itself, that carries the original signed
 * envelope byte for byte with the new eta; the worker that receives the
 * wrapper verifies both, and checks the original's time window, its key
 * (still trusted?) and its routing, as if the original had arrived. So a
 * handed-back copy expires when the original does, and dies with its key.
 *
 * @example
 * const wrapper = handBackOf(original, { exchange: "", routingKey: "celery", eta });
 * const inner = originalOf(wrapper); // original, or a reason
 */
import { Codec } from "../../broker/codec.ts";
import type { Envelope } from "../../broker/envelope.ts";

/** The header that marks a wrapper (signed, like every header). */
export const HANDED_BACK = "sig.handedBack";

const codec = new Codec();

/** The wrapper that carries signed `original` back to a queue, due at `routing.eta`. */
export const handBackOf = (
  original: Envelope,
  routing: Pick<Envelope, "exchange" | "routingKey" | "priority" | "eta">,
): Envelope => ({
  id: original.id,
  exchange: routing.exchange,
  routingKey: routing.routingKey,
  priority: routing.priority,
  ...(routing.eta !== undefined ? { eta: routing.eta } : {}),
  ...(original.expires !== undefined ? { expires: original.expires } : {}),
  headers: { task: original.headers.task, [HANDED_BACK]: true },
  body: codec.encode(
    {
      id: original.id,
      exchange: original.exchange,
      routingKey: original.routingKey,
      priority: original.priority,
      eta: original.eta,
      expires: original.expires,
      headers: original.headers,
      body: original.body,
    },
    "handed-back message",
  ),
});

/** The original signed envelope a wrapper carries (body without its own trailer), or why it cannot be read. */
export const originalOf = (wrapper: Envelope, body: Uint8Array): Envelope | { readonly reason: string } => {
  let decoded: unknown;
  try {
    decoded = codec.decode(body);
  } catch {
    return { reason: "the handed-back message does not hold a message" };
  }
  const o = decoded as Partial<Record<keyof Envelope, unknown>> | null;
  if (
    o === null ||
    typeof o !== "object" ||
    typeof o.id !== "string" ||
    typeof o.exchange !== "string" ||
    typeof o.routingKey !== "string" ||
    typeof o.priority !== "number" ||
    typeof o.headers !== "object" ||
    o.headers === null ||
    !(o.body instanceof Uint8Array)
  )
    return { reason: "the handed-back message does not hold a message" };
  if (o.id !== wrapper.id) return { reason: `the handed-back message holds message ${o.id}, not ${wrapper.id}` };
  if ((o.headers as Record<string, unknown>)[HANDED_BACK] !== undefined)
    return { reason: "a handed-back message holds another handed-back message" };
  return {
    id: o.id,
    exchange: o.exchange,
    routingKey: o.routingKey,
    priority: o.priority,
    ...(typeof o.eta === "number" ? { eta: o.eta } : {}),
    ...(typeof o.expires === "number" ? { expires: o.expires } : {}),
    headers: o.headers as Envelope["headers"],
    body: o.body,
  };
};
