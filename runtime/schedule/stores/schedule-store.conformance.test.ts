import { test } from "node:test";
import { EmbeddedBroker } from "../../../broker/embedded/embedded-broker.ts";
import { BrokerNode } from "../../../broker/node/node-server.ts";
import { NodeTransport } from "../../../broker/node/client/node-transport.ts";
import { isolatedTransport, redisSkipReason } from "../../../broker/redis/redis-test-support.ts";
import { dropSchema, postgresSkipReason, testSchema, TEST_POSTGRES_URL } from "../../results/postgres-test-support.ts";
import { PostgresScheduleStore } from "./postgres-schedule-store.ts";
import { RedisScheduleStore } from "./redis-schedule-store.ts";
import { RemoteScheduleStore } from "./remote-schedule-store.ts";
import { scheduleStoreConformance } from "./schedule-store-conformance.ts";
import { serveSchedules } from "../schedule-service.ts";
import { MemoryScheduleStore } from "../schedule-store.ts";

scheduleStoreConformance("embedded broker", async (now) => {
  const broker = new EmbeddedBroker();
  const store = new MemoryScheduleStore(broker, now);
  return { store, other: store, broker, close: () => broker.close() };
});

scheduleStoreConformance("broker node", async (now) => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveSchedules(node, { now });
  const broker = await NodeTransport.connect(node.url);
  const second = await NodeTransport.connect(node.url);
  return {
    store: new RemoteScheduleStore(broker.client),
    other: new RemoteScheduleStore(second.client),
    broker,
    async close() {
      await broker.close();
      await second.close();
      await node.stop();
    },
  };
});

const redisSkip = await redisSkipReason();
if (redisSkip) test("redis schedule store conformance", { skip: redisSkip }, () => {});
else
  scheduleStoreConformance("redis", async (now) => {
    const broker = await isolatedTransport();
    return {
      store: new RedisScheduleStore(broker, now),
      other: new RedisScheduleStore(broker, now),
      broker,
      close: () => broker.close(),
    };
  });

const postgresSkip = await postgresSkipReason();
if (postgresSkip) test("postgresql schedule store conformance", { skip: postgresSkip }, () => {});
else
  scheduleStoreConformance("postgresql (with an embedded broker)", async (now) => {
    const broker = new EmbeddedBroker();
    const schema = testSchema();
    const store = new PostgresScheduleStore(TEST_POSTGRES_URL, broker, { schema, now });
    const other = new PostgresScheduleStore(TEST_POSTGRES_URL, broker, { schema, now });
    return {
      store,
      other,
      broker,
      async close() {
        await store.close();
        await other.close();
        await broker.close();
        await dropSchema(schema);
      },
    };
  });
