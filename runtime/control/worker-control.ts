// A worker's end of remote control: its own auto-delete queue bound to the
// control exchange (gone with the worker, even when it dies), the commands it
// is addressed by run in arrival order, and each reply published to the
// caller's reply queue. A request for other workers is acknowledged and
// ignored; one that cannot be read is logged and dropped.
import { randomUUID } from "node:crypto";
import type { Delivery } from "../../broker/envelope.ts";
import type { Consumer } from "../../broker/transport.ts";
import { toErrorInfo } from "../errors.ts";
import type { Worker, WorkerControlHandle } from "../worker/worker.ts";
import {
  CONTROL_EXCHANGE,
  REPLY_EXCHANGE,
  readRequest,
  replyEnvelope,
  type ControlReply,
  type Method,
} from "./control-protocol.ts";
import { COMMANDS, type CommandContext } from "./worker-commands.ts";

/** What a worker's control needs of its app: the command context without the worker, and a log. */
export type ControlEnvironment = Omit<CommandContext, "worker"> & { readonly log: (message: string) => void };

/** Start answering remote control for `worker`; what the app hands its workers as `startControl`. */
export const startWorkerControl = async (
  environment: ControlEnvironment,
  worker: Worker,
): Promise<WorkerControlHandle> => {
  const { transport, log } = environment;
  const context: CommandContext = { ...environment, worker };
  const queue = `${CONTROL_EXCHANGE}.${worker.name}.${randomUUID().slice(0, 8)}`;
  await transport.declareExchange(CONTROL_EXCHANGE, "fanout");
  await transport.declareExchange(REPLY_EXCHANGE, "direct");
  await transport.declareQueue(queue, { autoDelete: true });
  await transport.bindQueue(queue, CONTROL_EXCHANGE, "");

  const reply = (to: string, fields: Omit<ControlReply, "hostname">) =>
    transport
      .publish(replyEnvelope(randomUUID(), to, { ...fields, hostname: worker.name }))
      .catch((error: unknown) =>
        log(`${worker.name}: could not reply to remote control: ${toErrorInfo(error).message}`),
      );

  const handle = async (delivery: Delivery): Promise<void> => {
    let request;
    try {
      request = readRequest(delivery.envelope.body);
    } catch (error) {
      return log(`${worker.name}: dropped an unreadable remote control request: ${toErrorInfo(error).message}`);
    }
    if (request.destination !== null && !request.destination.includes(worker.name)) return;
    const command = Object.hasOwn(COMMANDS, request.method) ? COMMANDS[request.method as Method] : undefined;
    let answer: Omit<ControlReply, "hostname">;
    if (command === undefined) {
      answer = {
        ticket: request.ticket,
        ok: false,
        error: `unknown command '${request.method}'; the commands are ${Object.keys(COMMANDS).join(", ")}`,
      };
    } else {
      try {
        answer = { ticket: request.ticket, ok: true, value: await command(context, request.arguments) };
      } catch (error) {
        answer = { ticket: request.ticket, ok: false, error: toErrorInfo(error).message };
      }
    }
    if (request.reply_to !== null) await reply(request.reply_to, answer);
  };

  // One command at a time, in arrival order: a shutdown after a pool change sees the change made.
  let chain: Promise<void> = Promise.resolve();
  let consumer: Consumer | undefined;
  const early: Delivery[] = [];
  const receive = (delivery: Delivery) => {
    if (consumer === undefined) return void early.push(delivery);
    consumer.ack(delivery.deliveryTag);
    chain = chain.then(() => handle(delivery));
  };
  consumer = await transport.consume(queue, receive, { prefetch: 16 });
  for (const delivery of early.splice(0)) receive(delivery);
  const attached = consumer;
  return {
    async close() {
      await attached.cancel();
    },
  };
};
