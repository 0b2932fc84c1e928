/**
 * How RabbitMQ's refusals become the transport contract's errors. A channel
 * error closes the channel it happened on; the transport opens another, so a
 * caller only ever sees the tagged error naming what was wrong.
 *
 * @module
 */
import { Data } from "effect";
import { DeclarationConflictError, ExchangeNotFoundError, QueueNotFoundError } from "../errors.ts";

/**
 * RabbitMQ could not be reached within `connectTimeoutMs` (the transport
 * keeps reconnecting meanwhile); `reason` holds the last error.
 *
 * @example
 * await AmqpTransport.connect("amqp://guest:secret@rabbit:5672/", { connectTimeoutMs: 5_000 });
 * // rejects: RabbitMQ at amqp://guest:***@rabbit:5672/ is unreachable: not ready within 5000 ms; last error: ...
 */
export class AmqpConnectionError extends Data.TaggedError("AmqpConnectionError")<{
  readonly url: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `RabbitMQ at ${this.url} is unreachable: ${this.reason}`;
  }
}

/**
 * A refusal by RabbitMQ that the contract has no error for; `code` is its AMQP reply code.
 *
 * @example
 * // a user without permissions on the vhost
 * await broker.declareQueue("tasks"); // rejects: RabbitMQ refused queue.declare (403): ACCESS_REFUSED - ...
 */
export class AmqpRefusedError extends Data.TaggedError("AmqpRefusedError")<{
  readonly operation: string;
  readonly code: number;
  readonly reason: string;
}> {
  override get message(): string {
    return `RabbitMQ refused ${this.operation} (${this.code}): ${this.reason}`;
  }
}

/** AMQP reply codes the transport acts on. */
export const ReplyCode = {
  notFound: 404,
  resourceLocked: 405,
  preconditionFailed: 406,
  accessRefused: 403,
} as const;

/** The reply code of an amqplib channel or connection error, if it carries one. */
export const replyCode = (error: unknown): number | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
};

/** What a refused operation was about, so the error can name it. */
export type Subject =
  | { readonly kind: "queue"; readonly name: string }
  | { readonly kind: "exchange"; readonly name: string }
  | { readonly kind: "other"; readonly name: string };

/**
 * The contract's error for an amqplib error raised by `operation` on `subject`:
 * 404 on a queue or exchange is its NotFound error, 406 on a declaration is a
 * DeclarationConflictError; anything else keeps RabbitMQ's code and text.
 */
export const mapAmqpError = (
  error: unknown,
  operation: string,
  subject: Subject,
): Error & { readonly _tag: string } => {
  const code = replyCode(error);
  const text = error instanceof Error ? error.message : String(error);
  if (code === ReplyCode.notFound && subject.kind === "queue") return new QueueNotFoundError({ queue: subject.name });
  if (code === ReplyCode.notFound && subject.kind === "exchange")
    return new ExchangeNotFoundError({ exchange: subject.name });
  if (code === ReplyCode.preconditionFailed && subject.kind !== "other") {
    return new DeclarationConflictError({ kind: subject.kind, name: subject.name, reason: inequivalence(text) });
  }
  return new AmqpRefusedError({ operation, code: code ?? 0, reason: text });
};

/** RabbitMQ's "PRECONDITION_FAILED - inequivalent arg 'x-max-priority' ..." without the frame noise. */
const inequivalence = (text: string): string => {
  const match = /PRECONDITION_FAILED - (.*?)(?:"|$)/.exec(text);
  return match?.[1] ?? text;
};
