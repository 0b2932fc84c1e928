import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CodecError } from "../broker/codec.ts";
import { Chain, Group, Signature } from "../dsl/canvas.ts";
import { chain } from "../dsl/combinators.ts";
import { CanvasError } from "../dsl/errors.ts";
import { createApp } from "./app.ts";
import { RemoteTaskError } from "./errors.ts";
import { eventually } from "./test-support.ts";

const setup = async () => {
  const logs: string[] = [];
  const app = createApp({ log: (line) => logs.push(line) });
  const add = app.task("add", (x: number, y: number) => x + y);
  const mul = app.task("mul", (x: number, y: number) => x * y);
  const worker = app.worker({ name: "w1" });
  await worker.start();
  return { app, add, mul, worker, logs };
};

describe("bad input gets a clear error and nothing is lost", () => {
  it("dead-letters a task the worker does not know and fails its result naming the task and what is registered", async () => {
    const { app, logs } = await setup();
    const r = await app.sendTask("nope", [1]);
    const error = await r.get({ timeout: 2_000 }).catch((e: unknown) => e);
    assert.ok(error instanceof RemoteTaskError);
    assert.equal(error.remote.name, "UnknownTaskError");
    assert.match(error.message, /task 'nope' is not registered on worker w1 \(queue 'celery'\); registered: add, mul/);
    const dead = await app.broker.deadLetters("celery.dlq");
    assert.equal(dead.length, 1);
    assert.equal(dead[0].envelope.id, r.id);
    assert.match(dead[0].reason, /'nope' is not registered/);
    assert.ok(logs.some((line) => line.includes("'nope' is not registered")));
    await app.close();
  });

  it("refuses arguments that cannot be serialized before anything is sent", async () => {
    const { app } = await setup();
    const take = app.task("take", (_value: unknown) => 1);
    await assert.rejects(
      take.delay(() => 1),
      (e: unknown) => e instanceof CodecError && /argument 1 of task 'take': a function cannot be sent/.test(e.message),
    );
    await assert.rejects(take.delay(new Map()), /a Map instance cannot be sent/);
    const stats = await app.broker.stats("celery");
    assert.equal(stats.ready + stats.unacked, 0);
    await app.close();
  });

  it("fails a task whose result cannot be serialized, naming the task", async () => {
    const { app } = await setup();
    const leaky = app.task("leaky", () => ({ handle: () => "a closure" }));
    const error = await (await leaky.delay()).get({ timeout: 2_000 }).catch((e: unknown) => e);
    assert.ok(error instanceof RemoteTaskError);
    assert.equal(error.remote.name, "CodecError");
    assert.match(error.message, /result of task 'leaky'\.handle: a function cannot be sent/);
    await app.close();
  });

  it("dead-letters a malformed message and records why", async () => {
    const { app, logs } = await setup();
    await app.broker.publish({
      id: "m-1",
      exchange: "",
      routingKey: "celery",
      priority: 0,
      headers: { task: "add" },
      body: new Uint8Array([0xc1]),
    });
    await app.broker.publish({
      id: "m-2",
      exchange: "",
      routingKey: "celery",
      priority: 0,
      headers: {},
      body: new Uint8Array([0x90]),
    });
    await eventually(async () => (await app.broker.deadLetters("celery.dlq")).length === 2, 2_000, "two dead letters");
    const reasons = (await app.broker.deadLetters("celery.dlq")).map((d) => d.reason).sort();
    assert.match(reasons[0], /message m-1 is malformed: malformed message body/);
    assert.match(reasons[1], /message m-2 is malformed: header 'task' is missing/);
    assert.equal((await app.result("m-1").error())?.name, "MalformedMessageError");
    assert.equal(logs.length, 2);
    await app.close();
  });

  it("refuses a canvas that does not compile, naming the step, and sends nothing", async () => {
    const { app, add } = await setup();
    const unknown = new Signature<[], number>("missing", [], {}, false, undefined);
    await assert.rejects(
      chain(add.s(1, 1), unknown as never).apply(),
      (e: unknown) => e instanceof CanvasError && /chain\[1\]: task 'missing' is not registered/.test(e.message),
    );
    // Too few arguments: add needs two, the first step has nothing to prepend.
    await assert.rejects(
      (add.s(1) as unknown as Signature<[], number>).apply(),
      /takes at least 2 argument\(s\) but would get 1/,
    );
    await assert.rejects(new Chain([]).apply(), /no signature created by an app/);
    const members: unknown[] = [add.s(1, 1)];
    const cyclic = new Group(members as never);
    members.push(cyclic);
    await assert.rejects(cyclic.apply(), /contains itself/);
    const stats = await app.broker.stats("celery");
    assert.equal(stats.ready + stats.unacked, 0);
    await app.close();
  });

  it("rejects a publish after the app is closed with a clear error", async () => {
    const { app, add } = await setup();
    await app.close();
    await assert.rejects(add.delay(1, 1), /closed/);
  });
});
