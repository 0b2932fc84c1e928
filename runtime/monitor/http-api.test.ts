import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { chord, group } from "../../dsl/combinators.ts";
import { createApp, type App } from "../app.ts";
import { eventually } from "../../tests/support/waits.ts";
import { createHttpHandler, API_ROUTES, type HttpHandlerOptions } from "./http-api.ts";
import { MonitorState } from "./monitor-state.ts";

const WAIT_MS = 5_000;
const BASE = "http://monitor.test";

interface Cluster {
  readonly app: App;
  readonly state: MonitorState;
  readonly call: (
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ) => Promise<{ status: number; body: any; headers: Headers }>;
}

/** An embedded app with a worker sending events, a monitor state fed by them, and the API over both. */
const cluster = async (t: TestContext, options: Omit<HttpHandlerOptions, "state"> = {}): Promise<Cluster> => {
  const app = createApp({ log: () => {}, events: true });
  app.task("add", (x: number, y: number) => x + y);
  app.task("boom", (why: string) => {
    throw new RangeError(why);
  });
  app.task("tsum", (values: number[]) => values.reduce((sum, value) => sum + value, 0));
  const state = new MonitorState();
  const subscription = await app.events.subscribe((event) => state.apply(event));
  await app.worker({ concurrency: 2, events: true }).start();
  t.after(async () => {
    await subscription.close();
    await app.close();
  });
  const handler = createHttpHandler(app, { ...options, state });
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await handler(
      new Request(`${BASE}${path}`, {
        method,
        headers: { "content-type": "application/json", ...headers },
        ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      }),
    );
    const text = await response.text();
    return { status: response.status, body: text === "" ? undefined : JSON.parse(text), headers: response.headers };
  };
  return { app, state, call };
};

describe("the HTTP API: tasks", () => {
  it("answers a task's state and result by id, and 404 for an id nobody knows (never PENDING)", async (t) => {
    const { app, call } = await cluster(t);
    const sent = await app.sendTask<number>("add", [2, 3]);
    assert.equal(await sent.get({ timeout: WAIT_MS }), 5);
    const found = await call("GET", `/api/tasks/${sent.id}`);
    assert.equal(found.status, 200);
    assert.equal(found.body.state, "SUCCESS");
    assert.equal(found.body.result, 5);
    assert.equal(found.body.name, "add");
    const unknown = await call("GET", "/api/tasks/no-such-task");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, "unknown_task");
    assert.match(unknown.body.message, /no task with id 'no-such-task' is known/);
  });

  it("shows a failed task's error with its traceback, and its event timeline", async (t) => {
    const { app, state, call } = await cluster(t);
    const sent = await app.sendTask("boom", ["no fuel"]);
    await assert.rejects(sent.get({ timeout: WAIT_MS }));
    await eventually(() => state.tasks.get(sent.id)?.state === "FAILURE", { what: "the task-failed event" });
    const { status, body } = await call("GET", `/api/tasks/${sent.id}`);
    assert.equal(status, 200);
    assert.equal(body.state, "FAILURE");
    assert.equal(body.error.name, "RangeError");
    assert.equal(body.error.message, "no fuel");
    assert.match(body.error.traceback, /RangeError: no fuel\n\s+at /);
    assert.deepEqual(
      body.timeline.map((entry: { type: string }) => entry.type),
      ["task-sent", "task-received", "task-started", "task-failed"],
    );
  });

  it("lists the tasks seen, filtered by state and name and searched by id", async (t) => {
    const { app, state, call } = await cluster(t);
    const ok = await app.sendTask("add", [1, 1]);
    const bad = await app.sendTask("boom", ["x"]);
    await ok.get({ timeout: WAIT_MS });
    await assert.rejects(bad.get({ timeout: WAIT_MS }));
    await eventually(
      () => state.tasks.get(bad.id)?.state === "FAILURE" && state.tasks.get(ok.id)?.state === "SUCCESS",
      {
        what: "both tasks' final events",
      },
    );
    const failed = await call("GET", "/api/tasks?state=failure");
    assert.deepEqual(
      failed.body.tasks.map((task: { id: string }) => task.id),
      [bad.id],
    );
    const byName = await call("GET", "/api/tasks?name=ad");
    assert.deepEqual(
      byName.body.tasks.map((task: { id: string }) => task.id),
      [ok.id],
    );
    const byId = await call("GET", `/api/tasks?id=${ok.id.slice(0, 8)}`);
    assert.deepEqual(
      byId.body.tasks.map((task: { id: string }) => task.id),
      [ok.id],
    );
    const badState = await call("GET", "/api/tasks?state=DONE");
    assert.equal(badState.status, 400);
    assert.match(badState.body.message, /'state' must be one of PENDING, .* got 'DONE'/);
    const badLimit = await call("GET", "/api/tasks?limit=0");
    assert.equal(badLimit.status, 400);
    assert.match(badLimit.body.message, /'limit' must be an integer from 1 to 1000, got '0'/);
  });

  it("applies a registered task by name with JSON arguments, refusing unknown tasks and bad arguments", async (t) => {
    const { app, call } = await cluster(t);
    const applied = await call("POST", "/api/apply/add", { args: [20, 22], options: { queue: "celery", priority: 3 } });
    assert.equal(applied.status, 202, JSON.stringify(applied.body));
    assert.equal(applied.body.task, "add");
    assert.equal(applied.headers.get("location"), `${BASE}/api/tasks/${applied.body.id}`);
    assert.equal(await app.result(applied.body.id).get({ timeout: WAIT_MS }), 42);

    const unknown = await call("POST", "/api/apply/nope", { args: [] });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.message, /task 'nope' is not registered; registered: add, boom, tsum/);
    const notArray = await call("POST", "/api/apply/add", { args: { x: 1 } });
    assert.equal(notArray.status, 400);
    assert.match(notArray.body.message, /'args' must be a JSON array/);
    const tooFew = await call("POST", "/api/apply/add", { args: [1] });
    assert.equal(tooFew.status, 400);
    assert.match(tooFew.body.message, /task 'add' takes at least 2 argument\(s\), got 1/);
    const notJson = await call("POST", "/api/apply/add", "{args:");
    assert.equal(notJson.status, 400);
    assert.match(notJson.body.message, /the body is not JSON/);
    const badOption = await call("POST", "/api/apply/add", { args: [1, 2], options: { delay: 5 } });
    assert.equal(badOption.status, 400);
    assert.match(badOption.body.message, /'options' has unknown field\(s\) 'delay'/);
    const badPriority = await call("POST", "/api/apply/add", { args: [1, 2], options: { priority: -1 } });
    assert.equal(badPriority.status, 400);
    assert.match(badPriority.body.message, /'options.priority' must be an integer of at least 0, got -1/);
  });

  it("revokes a task that has not run, and refuses to revoke an unknown id", async (t) => {
    const { app, call } = await cluster(t);
    const later = await app.sendTask("add", [1, 2], { countdown: 60_000 });
    const revoked = await call("POST", `/api/tasks/${later.id}/revoke`, {});
    assert.equal(revoked.status, 200);
    assert.deepEqual(revoked.body, { id: later.id, revoked: true, terminate: false });
    assert.equal((await call("GET", `/api/tasks/${later.id}`)).body.state, "REVOKED");
    const unknown = await call("POST", "/api/tasks/nobody/revoke", {});
    assert.equal(unknown.status, 404);
    const badBody = await call("POST", `/api/tasks/${later.id}/revoke`, { terminate: "yes" });
    assert.equal(badBody.status, 400);
    assert.match(badBody.body.message, /'terminate' must be true or false, got "yes"/);
  });

  it("shows a chord's workflow with each step's state, and a group's progress", async (t) => {
    const { app, call } = await cluster(t);
    const add = app.task("add2", (x: number, y: number) => x + y);
    const tsum = app.task("tsum2", (values: number[]) => values.reduce((sum, value) => sum + value, 0));
    const workflow = await chord(group(add.s(1, 1), add.s(2, 2)), tsum.s()).apply();
    assert.equal(await workflow.get({ timeout: WAIT_MS }), 6);
    const callback = await call("GET", `/api/tasks/${workflow.id}`);
    assert.equal(callback.status, 200);
    const graph = await call("GET", `/api/workflows/${callback.body.workflow.id}`);
    assert.equal(graph.status, 200);
    assert.deepEqual(
      graph.body.steps.map((step: { task: string; state: string; after: number[] }) => [
        step.task,
        step.state,
        step.after,
      ]),
      [
        ["add2", "SUCCESS", []],
        ["add2", "SUCCESS", []],
        ["tsum2", "SUCCESS", [0, 1]],
      ],
    );
    const members = await group(add.s(5, 5), add.s(6, 6)).apply();
    await members.get({ timeout: WAIT_MS });
    const progress = await call("GET", `/api/groups/${members.id}`);
    assert.equal(progress.status, 200);
    assert.equal(progress.body.total, 2);
    assert.equal(progress.body.succeeded, 2);
    assert.equal(progress.body.ready, true);
    assert.equal((await call("GET", "/api/groups/nothing")).status, 404);
    assert.equal((await call("GET", "/api/workflows/nothing")).status, 404);
  });
});

describe("the HTTP API: workers, queues, rate limits", () => {
  it("lists the workers with their status and pool", async (t) => {
    const { call, state } = await cluster(t);
    await eventually(() => state.cluster.workers().length === 1, { what: "the worker-online event" });
    const { status, body } = await call("GET", "/api/workers");
    assert.equal(status, 200);
    assert.equal(body.workers.length, 1);
    assert.equal(body.workers[0].status, "online");
    assert.equal(body.workers[0].pool.concurrency, 2);
  });

  it("lists queues with depths, pauses, resumes and purges them, and manages dead letters", async (t) => {
    const { app, call } = await cluster(t);
    assert.equal((await call("POST", "/api/queues/later/pause")).status, 200);
    await app.sendTask("add", [1, 1], { queue: "later" });
    await app.sendTask("add", [1, 2], { queue: "later" });
    const listed = await call("GET", "/api/queues");
    const later = listed.body.queues.find((queue: { name: string }) => queue.name === "later");
    assert.equal(later.ready, 2);
    assert.equal(later.paused, true);
    assert.equal((await call("POST", "/api/queues/later/resume")).body.paused, false);
    assert.deepEqual((await call("POST", "/api/queues/later/purge")).body, { queue: "later", purged: 2 });

    // A task no worker knows is rejected into the dead-letter queue.
    await app.sendTask("unregistered", []);
    await eventually(async () => (await call("GET", "/api/queues/celery/dead-letters")).body.deadLetters.length === 1, {
      what: "the rejected message in celery.dlq",
    });
    const letters = (await call("GET", "/api/queues/celery/dead-letters")).body.deadLetters;
    assert.equal(letters[0].task, "unregistered");
    const listedAgain = await call("GET", "/api/queues");
    assert.equal(listedAgain.body.queues.find((queue: { name: string }) => queue.name === "celery").deadLettered, 1);
    const badIds = await call("POST", "/api/queues/celery/dead-letters/discard", { ids: "all" });
    assert.equal(badIds.status, 400);
    assert.match(badIds.body.message, /'ids' must be an array of non-empty strings/);
    assert.deepEqual((await call("POST", "/api/queues/celery/dead-letters/discard", { ids: [letters[0].id] })).body, {
      queue: "celery",
      discarded: 1,
    });
    assert.deepEqual((await call("POST", "/api/queues/celery/dead-letters/requeue", {})).body, {
      queue: "celery",
      requeued: 0,
    });
  });

  it("changes a task's rate limit and refuses a bad one", async (t) => {
    const { call } = await cluster(t);
    const changed = await call("PUT", "/api/rate-limits/add", { rate: "5/s" });
    assert.equal(changed.status, 200);
    assert.deepEqual(changed.body, { task: "add", limit: "5/s" });
    assert.deepEqual(
      (await call("GET", "/api/rate-limits")).body.changes.map((change: { task: string }) => change.task),
      ["add"],
    );
    const bad = await call("PUT", "/api/rate-limits/add", { rate: "fast" });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /rate limit of task 'add'/);
    const missing = await call("PUT", "/api/rate-limits/add", {});
    assert.equal(missing.status, 400);
    assert.match(missing.body.message, /'rate' is required/);
  });

  it("serves throughput and counts, and 404s /metrics until metrics are enabled", async (t) => {
    const { app, call, state } = await cluster(t);
    await (await app.sendTask("add", [1, 1])).get({ timeout: WAIT_MS });
    await eventually(() => state.tasks.counts().SUCCESS === 1, { what: "the task-succeeded event" });
    const stats = await call("GET", "/api/stats");
    assert.equal(stats.body.tasks.SUCCESS, 1);
    assert.equal(stats.body.series.length, 120);
    assert.equal(stats.body.series.at(-1).succeeded + stats.body.series.at(-2).succeeded, 1);
    const metrics = await call("GET", "/metrics");
    assert.equal(metrics.status, 404);
    assert.match(metrics.body.message, /metrics are not enabled/);
  });
});

describe("the HTTP API: routes, documents, credentials", () => {
  it("describes every route in its OpenAPI 3.1 document", async (t) => {
    const { call } = await cluster(t);
    const { status, body } = await call("GET", "/openapi.json");
    assert.equal(status, 200);
    assert.equal(body.openapi, "3.1.0");
    for (const route of API_ROUTES)
      assert.ok(body.paths[route.path]?.[route.method.toLowerCase()], `${route.method} ${route.path} is documented`);
  });

  it("answers 404 for an unknown route and 405 for a wrong method, naming the allowed ones", async (t) => {
    const { call } = await cluster(t);
    const missing = await call("GET", "/api/nothing");
    assert.equal(missing.status, 404);
    assert.match(missing.body.message, /no route \/api\/nothing; see \/openapi.json/);
    const wrong = await call("DELETE", "/api/queues");
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET");
  });

  it("refuses requests without the token or with a wrong one (401, saying what to send), and accepts the right one", async (t) => {
    const { call } = await cluster(t, { auth: { token: "s3cret" } });
    const none = await call("GET", "/api/queues");
    assert.equal(none.status, 401);
    assert.equal(none.body.error, "unauthorized");
    assert.match(none.body.message, /authentication required: send a bearer token/);
    assert.match(none.headers.get("www-authenticate") ?? "", /Bearer realm="celerity"/);
    const wrong = await call("GET", "/api/queues", undefined, { authorization: "Bearer guess" });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body.message, /the bearer token is not valid/);
    const otherScheme = await call("GET", "/api/queues", undefined, { authorization: "Basic b3BzOnB3" });
    assert.equal(otherScheme.status, 401);
    assert.match(otherScheme.body.message, /the 'Basic' authorization scheme is not accepted/);
    const right = await call("GET", "/api/queues", undefined, { authorization: "Bearer s3cret" });
    assert.equal(right.status, 200);
    // The document describing the API is public.
    assert.equal((await call("GET", "/openapi.json")).status, 200);
  });

  it("refuses changes sent by a page of another origin, unless allowed, and reads from anywhere", async (t) => {
    const { call } = await cluster(t, { allowedOrigins: ["https://ops.example.com"] });
    const forged = await call("POST", "/api/queues/celery/purge", undefined, { origin: "https://evil.example" });
    assert.equal(forged.status, 403);
    assert.equal(forged.body.error, "cross_origin");
    assert.match(forged.body.message, /a page of https:\/\/evil\.example may not send changes to this API/);
    assert.equal((await call("POST", "/api/queues/celery/pause", undefined, { origin: BASE })).status, 200);
    assert.equal(
      (await call("POST", "/api/queues/celery/resume", undefined, { origin: "https://ops.example.com" })).status,
      200,
    );
    assert.equal((await call("GET", "/api/queues", undefined, { origin: "https://evil.example" })).status, 200);
  });

  it("accepts basic authentication when configured", async (t) => {
    const { call } = await cluster(t, { auth: { basic: { username: "ops", password: "pw" } } });
    const basic = (user: string, password: string) => ({
      authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`,
    });
    assert.equal((await call("GET", "/api/workers", undefined, basic("ops", "pw"))).status, 200);
    const wrong = await call("GET", "/api/workers", undefined, basic("ops", "nope"));
    assert.equal(wrong.status, 401);
    assert.match(wrong.body.message, /the user name or password is not valid/);
  });

  it("serves under a base path and refuses an empty credential at creation", async (t) => {
    const app = createApp({ log: () => {} });
    t.after(() => app.close());
    const handler = createHttpHandler(app, { basePath: "/celerity/" });
    assert.equal((await handler(new Request(`${BASE}/celerity/api/registered`))).status, 200);
    assert.equal((await handler(new Request(`${BASE}/api/registered`))).status, 404);
    assert.throws(() => createHttpHandler(app, { auth: { token: "" } }), /auth.token is empty/);
    assert.throws(() => createHttpHandler(app, { basePath: "api" }), /basePath must start with '\/'/);
    // Without a monitor's event history, listing tasks says what it needs.
    const listing = await handler(new Request(`${BASE}/celerity/api/tasks`));
    assert.equal(listing.status, 404);
    assert.match(((await listing.json()) as { message: string }).message, /needs the monitor's event history/);
  });
});
