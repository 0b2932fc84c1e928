/**
 * RabbitMQ's rule for the names of queues and exchanges: a non-empty string
 * of at most 255 bytes.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";

/**
 * Throw InvalidArgumentError, naming `argument`, unless `name` is a name RabbitMQ accepts.
 *
 * @example
 * checkName("queue name", "emails"); // fine
 * checkName("queue name", ""); // throws InvalidArgumentError
 */
export const checkName = (argument: string, name: unknown): void => {
  if (typeof name !== "string" || name.length === 0)
    throw new InvalidArgumentError({ argument, reason: `must be a non-empty string, got ${JSON.stringify(name)}` });
  if (Buffer.byteLength(name) > 255)
    throw new InvalidArgumentError({
      argument,
      reason: `RabbitMQ names are at most 255 bytes, got ${Buffer.byteLength(name)}`,
    });
};
