import { after, it } from "node:test";
import { queueAdminConformance } from "../queue-admin-conformance.ts";
import { AmqpTransport } from "./amqp-transport.ts";
import { testVhost } from "./amqp-test-broker.ts";

const server = await testVhost("queue-admin");
const uncounted = {
  delayed: "delayed messages wait in the shared delay ladder, which RabbitMQ cannot count by destination",
  unacked: "AMQP reports no unacknowledged count (only RabbitMQ's management plugin does)",
};
if ("skip" in server) {
  it("passes the queue management conformance suite on RabbitMQ", { skip: server.skip }, () => {});
} else {
  after(() => server.dispose());
  queueAdminConformance("amqp (classic queues)", () => AmqpTransport.connect(server.url, { log: () => {} }), {
    uncounted,
  });
  queueAdminConformance(
    "amqp (quorum queues)",
    () => AmqpTransport.connect(server.url, { log: () => {}, queueType: "quorum" }),
    { uncounted },
  );
}
