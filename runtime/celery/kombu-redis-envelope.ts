// kombu's Redis envelope: a JSON object holding the base64 body, the content
// type, Celery's headers and kombu's properties (`delivery_tag`,
// `delivery_info`, `priority`), pushed on a list named after the queue, or
// on one of its priority sub-lists.
import { randomUUID } from "node:crypto";
import { inflateSync } from "node:zlib";
import { CeleryMessageError } from "./celery-errors.ts";
import { celeryBody, celeryHeaders, type CeleryTaskMessage } from "./celery-message.ts";

/** kombu's separator in priority sub-list names and binding members. */
export const KOMBU_SEP = "\x06\x16";

/** kombu's priority steps: 0–2 go on the queue's own list, 3–5 on `<queue>␆␖3`, 6–8 on `…6`, 9 on `…9`. */
export const priorityList = (queue: string, priority: number): string => {
  const clamped = Math.max(0, Math.min(9, Math.trunc(priority)));
  const step = clamped >= 9 ? 9 : clamped >= 6 ? 6 : clamped >= 3 ? 3 : 0;
  return step === 0 ? queue : `${queue}${KOMBU_SEP}${step}`;
};

/** The lists a consumer of `queue` pops, in the order kombu serves them (lowest priority number first). */
export const priorityLists = (queue: string): string[] => [0, 3, 6, 9].map((step) => priorityList(queue, step));

/** The queue a priority sub-list belongs to. */
export const queueOfList = (list: string): string => {
  const at = list.indexOf(KOMBU_SEP);
  return at < 0 ? list : list.slice(0, at);
};

/** The envelope kombu 5.2 writes for a task message, as a JSON string ready for LPUSH. */
export const encodeKombuEnvelope = (message: CeleryTaskMessage, replyTo = ""): string =>
  JSON.stringify({
    body: Buffer.from(celeryBody(message), "utf8").toString("base64"),
    "content-encoding": "utf-8",
    "content-type": "application/json",
    headers: celeryHeaders(message),
    properties: {
      correlation_id: message.id,
      reply_to: replyTo,
      delivery_mode: 2,
      delivery_info: { exchange: "", routing_key: message.queue },
      priority: message.priority,
      body_encoding: "base64",
      delivery_tag: randomUUID(),
    },
  });

/** A decoded envelope: what the worker needs before it reads the task message. */
export interface KombuDelivery {
  readonly deliveryTag: string;
  readonly headers: Record<string, unknown>;
  readonly body: unknown;
  readonly priority: number;
  readonly routingKey: string;
  readonly exchange: string;
}

const SUPPORTED_COMPRESSION = new Set(["application/x-gzip", "application/zlib", "zlib", "gzip"]);

/**
 * Read kombu's envelope. Throws CeleryMessageError naming what is wrong: not
 * JSON, no `properties.delivery_tag`, a content type other than JSON, an
 * unknown body encoding or compression, a body that is not JSON.
 */
export const decodeKombuEnvelope = (raw: string): KombuDelivery => {
  let envelope: unknown;
  try {
    envelope = JSON.parse(raw);
  } catch (error) {
    throw new CeleryMessageError({ reason: `the message is not kombu's JSON envelope: ${(error as Error).message}` });
  }
  if (envelope === null || typeof envelope !== "object" || Array.isArray(envelope))
    throw new CeleryMessageError({ reason: "the message is not kombu's envelope (a JSON object)" });
  const { body, headers, properties } = envelope as Record<string, unknown>;
  const contentType = (envelope as Record<string, unknown>)["content-type"];
  const props = (properties ?? {}) as Record<string, unknown>;
  const headerObject = (headers ?? {}) as Record<string, unknown>;
  const id = typeof headerObject.id === "string" ? headerObject.id : undefined;
  const task = typeof headerObject.task === "string" ? headerObject.task : undefined;
  const fail = (reason: string): never => {
    throw new CeleryMessageError({
      reason,
      ...(id !== undefined ? { id } : {}),
      ...(task !== undefined ? { task } : {}),
    });
  };
  if (typeof props.delivery_tag !== "string" || props.delivery_tag.length === 0)
    fail("the envelope has no properties.delivery_tag");
  if (contentType !== "application/json")
    fail(
      `content type ${JSON.stringify(contentType)} is not supported; send application/json (Celery's task_serializer='json')`,
    );
  if (typeof body !== "string") fail("the envelope's body is not a string");
  const encoding = props.body_encoding ?? null;
  let bytes: Buffer;
  if (encoding === "base64") bytes = Buffer.from(body as string, "base64");
  else if (encoding === null) bytes = Buffer.from(body as string, "utf8");
  else return fail(`body encoding ${JSON.stringify(encoding)} is not supported (base64 or none)`);
  const compression = headerObject.compression;
  if (compression !== undefined && compression !== null) {
    if (typeof compression !== "string" || !SUPPORTED_COMPRESSION.has(compression))
      fail(`compression ${JSON.stringify(compression)} is not supported (zlib)`);
    try {
      bytes = inflateSync(bytes);
    } catch (error) {
      fail(`the compressed body does not inflate: ${(error as Error).message}`);
    }
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    fail(`the body is not JSON: ${(error as Error).message}`);
  }
  const info = (props.delivery_info ?? {}) as Record<string, unknown>;
  return {
    deliveryTag: props.delivery_tag as string,
    headers: headerObject,
    body: decoded,
    priority: typeof props.priority === "number" ? props.priority : 0,
    routingKey: typeof info.routing_key === "string" ? info.routing_key : "",
    exchange: typeof info.exchange === "string" ? info.exchange : "",
  };
};
