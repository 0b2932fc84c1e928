import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { redisSkipReason, TEST_REDIS_URL } from "../../broker/redis/redis-test-support.ts";
import { createCeleryApp } from "./celery-app.ts";
import { EMPTY_EMBED } from "./celery-message.ts";
import { encodeKombuEnvelope, priorityLists } from "./kombu-redis-envelope.ts";

const skip = await redisSkipReason();

/** A log that resolves `seen(n)` once `n` rejections were logged, or fails loudly after `ms`. */
const rejectionLog = () => {
  const lines: string[] = [];
  const waiting: { n: number; resolve: () => void }[] = [];
  const rejections = () => lines.filter((line) => line.startsWith("celery message rejected")).length;
  return {
    lines,
    log: (line: string) => {
      lines.push(line);
      for (const wait of waiting) if (rejections() >= wait.n) wait.resolve();
    },
    seen: (n: number, ms = 10_000) =>
      new Promise<void>((resolve, reject) => {
        if (rejections() >= n) return resolve();
        const timer = setTimeout(
          () => reject(new Error(`${n} rejections were not logged within ${ms} ms:\n${lines.join("\n")}`)),
          ms,
        );
        waiting.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
      }),
  };
};

describe("a worker on the Celery protocol given bad messages", { skip }, () => {
  const queue = `celerity-celery-bad-${randomUUID().slice(0, 8)}`;
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true });
  after(async () => {
    await redis.del(...priorityLists(queue), `${queue}.dead-letter`, `_kombu.binding.${queue}`).catch(() => undefined);
    redis.disconnect();
  });

  it("dead-letters each with a log line naming what is wrong, and keeps serving good messages", async (t) => {
    const logged = rejectionLog();
    const app = createCeleryApp({ broker: TEST_REDIS_URL, queue, resultExpires: 60, log: logged.log });
    t.after(() => app.close());
    app.task("ts.add", (x: number, y: number) => x + y);
    if (redis.status !== "ready") await redis.connect();
    const good = (id: string, task = "ts.add") =>
      JSON.parse(
        encodeKombuEnvelope({
          id,
          task,
          args: [1, 2],
          kwargs: {},
          embed: EMPTY_EMBED,
          rootId: id,
          parentId: null,
          group: null,
          groupIndex: null,
          retries: 0,
          eta: null,
          expires: null,
          timeLimit: null,
          softTimeLimit: null,
          ignoreResult: false,
          queue,
          priority: 0,
        }),
      ) as Record<string, any>;
    const noTag = good(randomUUID());
    delete noTag.properties.delivery_tag;
    const unknown = good(randomUUID(), "ts.nope");
    const malformed = good(randomUUID());
    malformed.body = Buffer.from(JSON.stringify({ args: [1, 2] })).toString("base64");
    const pickled = good(randomUUID());
    pickled["content-type"] = "application/x-python-serialize";
    for (const bad of [noTag, unknown, malformed, pickled]) await redis.lpush(queue, JSON.stringify(bad));
    await redis.lpush(queue, "{not json");

    await app.worker({ concurrency: 2 }).start();
    const result = await app.sendTask<number>("ts.add", [20, 22]);
    assert.equal(await result.get({ timeout: 10_000 }), 42);
    await logged.seen(5);
    assert.equal(await redis.llen(`${queue}.dead-letter`), 5);

    const reasons = (await redis.lrange(`${queue}.dead-letter`, 0, -1))
      .map((entry) => (JSON.parse(entry) as { reason: string; message: string }).reason)
      .join("\n");
    assert.match(reasons, /no properties\.delivery_tag/);
    assert.match(reasons, /task 'ts\.nope' is not registered on worker .*; registered: ts\.add/);
    assert.match(reasons, /the body is not \[args, kwargs, embed\]/);
    assert.match(reasons, /content type "application\/x-python-serialize" is not supported/);
    assert.match(reasons, /not kombu's JSON envelope/);
    assert.equal(
      logged.lines.filter((line) => line.startsWith("celery message rejected")).length,
      5,
      logged.lines.join("\n"),
    );
    // The message itself is kept, so nothing is lost.
    const kept = (await redis.lrange(`${queue}.dead-letter`, 0, -1)).map(
      (entry) => (JSON.parse(entry) as { message: string }).message,
    );
    assert.ok(kept.includes("{not json"));
    // An unknown task's result is a failure Python's get() raises (NotRegistered), not PENDING forever.
    await assert.rejects(app.result(unknown.headers.id as string).get({ timeout: 5_000 }), /NotRegistered: ts\.nope/);
  });

  it("puts back and runs a message a dead worker took and never acknowledged", async (t) => {
    const restoreQueue = `${queue}-restore`;
    const logged = rejectionLog();
    const app = createCeleryApp({
      broker: TEST_REDIS_URL,
      queue: restoreQueue,
      resultExpires: 60,
      visibilityTimeout: 5,
      log: logged.log,
    });
    t.after(async () => {
      await app.close();
      await redis.del(...priorityLists(restoreQueue), `_kombu.binding.${restoreQueue}`);
    });
    app.task("ts.add", (x: number, y: number) => x + y);
    if (redis.status !== "ready") await redis.connect();
    const id = randomUUID();
    const raw = encodeKombuEnvelope({
      id,
      task: "ts.add",
      args: [40, 2],
      kwargs: {},
      embed: EMPTY_EMBED,
      rootId: id,
      parentId: null,
      group: null,
      groupIndex: null,
      retries: 0,
      eta: null,
      expires: null,
      timeLimit: null,
      softTimeLimit: null,
      ignoreResult: false,
      queue: restoreQueue,
      priority: 0,
    });
    const tag = (JSON.parse(raw) as { properties: { delivery_tag: string } }).properties.delivery_tag;
    // What a worker that died mid-task leaves behind: the message only in kombu's unacked bookkeeping, taken 10 s ago.
    await redis
      .multi()
      .zadd("unacked_index", Date.now() / 1000 - 10, tag)
      .hset("unacked", tag, `[${raw}, "", ${JSON.stringify(restoreQueue)}]`)
      .exec();
    await app.worker().start();
    assert.equal(await app.result<number>(id).get({ timeout: 10_000 }), 42);
    assert.equal(await redis.hexists("unacked", tag), 0);
    assert.ok(
      logged.lines.some((line) => /put \d+ unacknowledged message\(s\) older than 5 s back/.test(line)),
      logged.lines.join("\n"),
    );
  });

  it("runs a TypeScript chain, group and chord whose steps are all TypeScript", async (t) => {
    const app = createCeleryApp({ broker: TEST_REDIS_URL, queue: `${queue}-canvas`, resultExpires: 60 });
    t.after(async () => {
      await app.close();
      await redis.del(...priorityLists(`${queue}-canvas`), `_kombu.binding.${queue}-canvas`);
    });
    const add = app.task("ts.add", (x: number, y: number) => x + y);
    const tsum = app.task("ts.tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
    await app.worker({ concurrency: 4 }).start();
    const { chain, group, chord } = await import("../../dsl/combinators.ts");
    assert.equal(await (await chain(add.s(1, 1), add.s(2), add.s(3)).apply()).get({ timeout: 10_000 }), 7);
    assert.deepEqual(await (await group(add.s(1, 1), add.s(2, 2)).apply()).get({ timeout: 10_000 }), [2, 4]);
    assert.equal(
      await (await chord(group(add.s(1, 1), add.s(2, 2), add.s(3, 3)), tsum.s()).apply()).get({ timeout: 10_000 }),
      12,
    );
  });
});

describe("a worker on the Celery protocol over RabbitMQ given bad messages", async () => {
  const { testVhost } = await import("../../broker/amqp/amqp-test-broker.ts");
  const redisSkip = await redisSkipReason();
  const vhost = redisSkip === false ? await testVhost("celery-bad") : { skip: redisSkip };
  after(async () => {
    if (!("skip" in vhost)) await vhost.dispose();
  });

  it("dead-letters a pickled message and a malformed body, and keeps serving", {
    skip: "skip" in vhost ? vhost.skip : false,
  }, async (t) => {
    if ("skip" in vhost) return;
    const queue = `celerity-celery-bad-${randomUUID().slice(0, 8)}`;
    const logged = rejectionLog();
    const app = createCeleryApp({
      broker: vhost.url,
      results: TEST_REDIS_URL,
      queue,
      resultExpires: 60,
      log: logged.log,
    });
    const amqp = await import("amqplib");
    const connection = await amqp.connect(vhost.url);
    t.after(async () => {
      await connection.close();
      await app.close();
    });
    app.task("ts.add", (x: number, y: number) => x + y);
    await app.worker().start();
    const channel = await connection.createConfirmChannel();
    const headers = { id: randomUUID(), task: "ts.add" };
    channel.sendToQueue(queue, Buffer.from("\x80\x04pickle"), {
      contentType: "application/x-python-serialize",
      headers,
    });
    channel.sendToQueue(queue, Buffer.from('{"args": [1, 2]}'), { contentType: "application/json", headers });
    await channel.waitForConfirms();
    assert.equal(await (await app.sendTask<number>("ts.add", [1, 2])).get({ timeout: 10_000 }), 3);
    await logged.seen(2);
    assert.match(logged.lines.join("\n"), /content type "application\/x-python-serialize" is not supported/);
    assert.match(logged.lines.join("\n"), /the body is not \[args, kwargs, embed\]/);
    const dead = await channel.checkQueue(`${queue}.dead-letter`);
    assert.equal(dead.messageCount, 2);
  });
});
