import { test } from "node:test";
import { redisSkipReason, testPrefix, dropPrefix, TEST_REDIS_URL } from "../../broker/redis/redis-test-support.ts";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { NodeTransport } from "../../broker/node/client/node-transport.ts";
import { tempDir } from "../../broker/node/node-test-support.ts";
import { DurableResultStore } from "./durable/durable-result-store.ts";
import { PostgresResultStore } from "./postgres-result-store.ts";
import { dropSchema, postgresSkipReason, testSchema, TEST_POSTGRES_URL } from "./postgres-test-support.ts";
import { RedisResultStore } from "./redis-result-store.ts";
import { RemoteResultStore } from "./remote-result-store.ts";
import { resultStoreConformance } from "./result-store-conformance.ts";
import { MemoryResultStore, type ResultStore } from "./result-store.ts";
import { serveResults } from "./result-service.ts";

resultStoreConformance("memory", async () => ({ store: new MemoryResultStore(), done: async () => {} }));

resultStoreConformance("durable", async () => {
  const dir = tempDir();
  const store = await DurableResultStore.open(`${dir.path}/results`, { log: () => {} });
  return {
    store,
    done: async () => {
      await store.close();
      dir.remove();
    },
  };
});

resultStoreConformance("remote (broker node)", async () => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node);
  const transports: NodeTransport[] = [];
  const open = async (): Promise<ResultStore> => {
    const transport = await NodeTransport.connect(node.url, { log: () => {} });
    transports.push(transport);
    return new RemoteResultStore(transport.client);
  };
  const store = await open();
  return {
    store,
    peer: open,
    done: async () => {
      for (const transport of transports) await transport.close();
      await node.stop();
    },
  };
});

const redisSkip = await redisSkipReason();
if (redisSkip) test("redis result store conformance", { skip: redisSkip }, () => {});
else {
  resultStoreConformance("redis", async () => {
    const prefix = testPrefix("results");
    const stores: RedisResultStore[] = [];
    const open = async () => {
      const store = new RedisResultStore(TEST_REDIS_URL, { prefix });
      stores.push(store);
      return store;
    };
    return {
      store: await open(),
      peer: open,
      done: async () => {
        for (const store of stores) await store.close();
        await dropPrefix(prefix);
      },
    };
  });
}

const postgresSkip = await postgresSkipReason();
if (postgresSkip) test("postgres result store conformance", { skip: postgresSkip }, () => {});
else {
  resultStoreConformance("postgres", async () => {
    const schema = testSchema();
    const stores: PostgresResultStore[] = [];
    const open = async () => {
      const store = new PostgresResultStore(TEST_POSTGRES_URL, { schema, poolSize: 4 });
      stores.push(store);
      return store;
    };
    return {
      store: await open(),
      peer: open,
      done: async () => {
        for (const store of stores) await store.close();
        await dropSchema(schema);
      },
    };
  });
}
