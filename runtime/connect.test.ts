import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EmbeddedBroker } from "../broker/embedded/embedded-broker.ts";
import { RedisTransport } from "../broker/redis/redis-transport.ts";
import { createApp } from "./app.ts";
import { connect, openResultStore } from "./connect.ts";
import { PostgresResultStore } from "./results/postgres-result-store.ts";
import { RedisResultStore } from "./results/redis-result-store.ts";
import { MemoryResultStore } from "./results/result-store.ts";

const log = () => {};

describe("connecting by url", () => {
  it("refuses a broker url of a scheme it does not know, listing the ones it does", () => {
    assert.throws(
      () => createApp({ broker: "kafka://127.0.0.1:9092", log }),
      /invalid broker url: "kafka:\/\/127.0.0.1:9092" has no scheme celerity knows; use one of celerity:\/\/, redis:\/\/, rediss:\/\//,
    );
    assert.throws(() => createApp({ broker: "127.0.0.1:5690", log }), /invalid broker url: "127.0.0.1:5690"/);
  });

  it("refuses a results url of a scheme it does not know, listing the ones it does", () => {
    assert.throws(
      () => createApp({ results: "mongodb://127.0.0.1/results", log }),
      /invalid results url: "mongodb:\/\/127.0.0.1\/results" names no result store celerity knows; use one of redis:\/\/, rediss:\/\/, postgres:\/\/, postgresql:\/\/, memory/,
    );
  });

  it("refuses a PostgreSQL schema that is not a plain identifier, before connecting", () => {
    assert.throws(
      () => openResultStore("postgres://postgres@127.0.0.1:5432/test?schema=results;drop"),
      /schema name "results;drop" is not a plain identifier/,
    );
  });

  it("opens the store each results url names, with any broker", async () => {
    const memory = openResultStore("memory");
    assert.ok(memory instanceof MemoryResultStore);
    const redis = openResultStore("redis://127.0.0.1:6379/11?prefix=celerity-connect-test");
    const postgres = openResultStore("postgresql://postgres@127.0.0.1:5432/test");
    try {
      assert.ok(redis instanceof RedisResultStore);
      assert.ok(postgres instanceof PostgresResultStore);
      const connected = connect({ results: "memory", log });
      assert.ok(connected.broker instanceof EmbeddedBroker);
      assert.ok(connected.results instanceof MemoryResultStore);
      await connected.broker.close();
    } finally {
      await redis.close();
      await postgres.close();
    }
  });

  it("puts a redis:// broker's results in the same Redis unless told otherwise", async () => {
    const connected = connect({ broker: "redis://127.0.0.1:6379/11?prefix=celerity-connect-test", log });
    try {
      assert.ok(connected.broker instanceof RedisTransport);
      assert.ok(connected.results instanceof RedisResultStore);
    } finally {
      await connected.broker.close();
      await connected.results.close();
    }
  });
});
