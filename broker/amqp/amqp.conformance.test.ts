import { after, it } from "node:test";
import { transportConformance } from "../conformance.ts";
import { AmqpTransport } from "./amqp-transport.ts";
import { testVhost } from "./amqp-test-broker.ts";

const server = await testVhost("conformance");
if ("skip" in server) {
  it("passes the transport conformance suite on RabbitMQ", { skip: server.skip }, () => {});
} else {
  after(() => server.dispose());
  transportConformance("amqp (classic queues)", () => AmqpTransport.connect(server.url, { log: () => {} }));
  transportConformance(
    "amqp (quorum queues)",
    () => AmqpTransport.connect(server.url, { log: () => {}, queueType: "quorum" }),
    {
      unsupported: {
        priorities: "RabbitMQ 3.x quorum queues do not order by priority (classic queues do)",
        etaOrder:
          "each delay hop on a quorum queue is a replicated dead-lettering: etas close together can swap (docs/scaling.md)",
      },
    },
  );
}
