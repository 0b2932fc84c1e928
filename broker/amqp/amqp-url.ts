/**
 * Whether a broker url names RabbitMQ, with nothing imported: the CLI asks
 * before it loads any transport.
 *
 * @module
 */

/**
 * Whether `url` names a RabbitMQ server (amqp:// or amqps://).
 *
 * @example
 * isAmqpUrl("amqp://guest:guest@127.0.0.1:5672/%2F"); // true
 * isAmqpUrl("celerity://127.0.0.1:5690"); // false
 */
export const isAmqpUrl = (url: string): boolean => /^amqps?:\/\//i.test(url);
