/**
 * Whether a broker url names RabbitMQ, with nothing imported: the CLI asks
 * before it loads any transport.
 *
 * @module
 */

/** Whether `url` names a RabbitMQ server (amqp:// or amqps://). */
export const isAmqpUrl = (url: string): boolean => /^amqps?:\/\//i.test(url);
