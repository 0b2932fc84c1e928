/**
 * RabbitMQ's own ceiling on this machine, with no task queue in between:
 * raw amqplib publishing persistent messages to a durable priority queue
 * (as celerity's classic queues are declared) with publisher confirms,
 * 1,000 unconfirmed at a time (as the peers bench's concurrent producer
 * keeps 1,000 sends in flight), then consuming them with a prefetch of 256
 * (a worker of concurrency 64) and one `multiple` ack per event-loop turn.
 * Run it beside `--only celerity-amqp` to read celerity's RabbitMQ row
 * against what RabbitMQ can do at all at that moment.
 *
 *   node --import tsx bench/peers/amqp-ceiling.ts [--messages 30000] [--runs 3]
 */
import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import amqp from "amqplib";
import { AMQP } from "./reachable.ts";

const { values: opts } = parseArgs({
  options: { messages: { type: "string", default: "30000" }, runs: { type: "string", default: "3" } },
  strict: true,
});
const MESSAGES = Number(opts.messages);
const RUNS = Number(opts.runs);
const IN_FLIGHT = 1_000;
const PREFETCH = 256;
/** About the size of a celerity no-op task's message. */
const BODY = Buffer.alloc(180, 0x61);

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const connection = await amqp.connect(`amqp://guest:guest@${AMQP.host}:${AMQP.port}`);
const publisher = await connection.createConfirmChannel();
const consumer = await connection.createChannel();
const queue = `celerity-bench-ceiling-${randomUUID().slice(0, 8)}`;
await publisher.assertQueue(queue, { durable: true, arguments: { "x-max-priority": 9 } });

/** Publish `n` with confirms, IN_FLIGHT outstanding at most; resolves once all are confirmed. */
const publish = async (n: number) => {
  for (let i = 0; i < n; i += IN_FLIGHT) {
    const window: Promise<void>[] = [];
    for (let j = 0; j < IN_FLIGHT && i + j < n; j++)
      window.push(
        new Promise((resolve, reject) =>
          publisher.publish("", queue, BODY, { persistent: true, priority: 0, messageId: String(i + j) }, (error) =>
            error ? reject(error) : resolve(),
          ),
        ),
      );
    await Promise.all(window);
  }
};

/** Consume `n`, acking once per turn with `multiple`; resolves when the last is acked. */
const consume = (n: number) =>
  new Promise<void>((resolve) => {
    let got = 0;
    let last: amqp.ConsumeMessage | undefined;
    let queued = false;
    consumer.prefetch(PREFETCH);
    void consumer
      .consume(queue, (message) => {
        if (message === null) return;
        got++;
        last = message;
        if (!queued) {
          queued = true;
          setImmediate(() => {
            queued = false;
            if (last !== undefined) consumer.ack(last, true);
            if (got >= n) {
              void consumer.cancel(tag).then(() => resolve());
            }
          });
        }
      })
      .then((ok) => (tag = ok.consumerTag));
    let tag = "";
  });

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);
const timed = async (work: () => Promise<unknown>) => {
  const t0 = performance.now();
  await work();
  return performance.now() - t0;
};

console.log(
  `amqplib alone on RabbitMQ at ${AMQP.host}:${AMQP.port}: ${MESSAGES.toLocaleString("en")} persistent messages a run, ` +
    `${IN_FLIGHT} unconfirmed at most, prefetch ${PREFETCH}; load average ${loadavg()[0].toFixed(2)}`,
);
await publish(Math.round(MESSAGES / 4)); // warm-up
await consume(Math.round(MESSAGES / 4));
const published: number[] = [];
const consumed: number[] = [];
const both: number[] = [];
for (let run = 0; run < RUNS; run++) {
  published.push(rate(MESSAGES, await timed(() => publish(MESSAGES))));
  consumed.push(rate(MESSAGES, await timed(() => consume(MESSAGES))));
  both.push(rate(MESSAGES, await timed(() => Promise.all([consume(MESSAGES), publish(MESSAGES)]))));
}
const show = (label: string, xs: number[]) =>
  console.log(
    `  ${label.padEnd(40)} ${median(xs).toLocaleString("en").padStart(7)} msg/s (min ${Math.min(...xs).toLocaleString("en")}, max ${Math.max(...xs).toLocaleString("en")})`,
  );
show("publish with confirms (a backlog)", published);
show("consume and ack (the backlog)", consumed);
show("publish and consume concurrently", both);
console.log(`load average at the end ${loadavg()[0].toFixed(2)}`);
await publisher.deleteQueue(queue);
await connection.close();
