import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CeleryMessageError } from "./celery-errors.ts";
import {
  EMPTY_EMBED,
  isoWithOffset,
  messageOfSignature,
  parseCeleryMessage,
  parseCeleryTime,
  type CeleryTaskMessage,
} from "./celery-message.ts";
import { decodeKombuEnvelope, encodeKombuEnvelope, priorityList, priorityLists } from "./kombu-redis-envelope.ts";
import { fromCeleryException, resultMeta, toCeleryException } from "./celery-result-meta.ts";
import { pythonRepr } from "./python-repr.ts";

const message = (overrides: Partial<CeleryTaskMessage> = {}): CeleryTaskMessage => ({
  id: "555d9b87-7f19-4fc9-b91e-1849a0f782c7",
  task: "tasks.add",
  args: [2, 3],
  kwargs: {},
  embed: EMPTY_EMBED,
  rootId: "555d9b87-7f19-4fc9-b91e-1849a0f782c7",
  parentId: null,
  group: null,
  groupIndex: null,
  retries: 0,
  eta: null,
  expires: null,
  timeLimit: null,
  softTimeLimit: null,
  ignoreResult: false,
  queue: "celery",
  priority: 0,
  ...overrides,
});

/** The list entry kombu 5.2.4 wrote for tasks.add(2, 3), as captured from Redis. */
const CAPTURED =
  '{"body": "W1syLCAzXSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "tasks.add", "id": "555d9b87-7f19-4fc9-b91e-1849a0f782c7", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "555d9b87-7f19-4fc9-b91e-1849a0f782c7", "parent_id": null, "argsrepr": "(2, 3)", "kwargsrepr": "{}", "origin": "gen10020@vm", "ignore_result": false}, "properties": {"correlation_id": "555d9b87-7f19-4fc9-b91e-1849a0f782c7", "reply_to": "7026c5b0-1d11-336a-b71c-76043f23076c", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "63b684b4-594b-4efe-ac9d-481e7b2aa896"}}';

describe("Celery's task message in kombu's Redis envelope", () => {
  it("reads the message Python Celery 5.2 writes", () => {
    const delivery = decodeKombuEnvelope(CAPTURED);
    assert.equal(delivery.deliveryTag, "63b684b4-594b-4efe-ac9d-481e7b2aa896");
    const read = parseCeleryMessage(delivery.headers, delivery.body, "celery", delivery.priority);
    assert.equal(read.task, "tasks.add");
    assert.deepEqual(read.args, [2, 3]);
    assert.deepEqual(read.kwargs, {});
    assert.deepEqual(read.embed, EMPTY_EMBED);
    assert.equal(read.rootId, read.id);
  });

  it("writes the same headers, in the same order, and the same properties as Python Celery", () => {
    const written = JSON.parse(encodeKombuEnvelope(message())) as Record<string, any>;
    const captured = JSON.parse(CAPTURED) as Record<string, any>;
    assert.deepEqual(Object.keys(written.headers), Object.keys(captured.headers));
    assert.deepEqual(Object.keys(written.properties).sort(), Object.keys(captured.properties).sort());
    const bodyOf = (envelope: Record<string, any>) => JSON.parse(Buffer.from(envelope.body, "base64").toString("utf8"));
    assert.deepEqual(bodyOf(written), bodyOf(captured));
    assert.equal(written.headers.argsrepr, "(2, 3)");
    assert.equal(written.headers.lang, "js");
    assert.match(written.properties.delivery_tag, /^[0-9a-f-]{36}$/);
  });

  it("writes eta and expires with a time-zone offset and time limits as [hard, soft] seconds", () => {
    const at = Date.UTC(2026, 10, 29, 4, 32, 1, 139);
    const headers = JSON.parse(
      encodeKombuEnvelope(message({ eta: at, expires: at + 90_000, timeLimit: 10, softTimeLimit: 5 })),
    ).headers;
    assert.equal(headers.eta, "2026-11-29T04:32:01.139000+00:00");
    assert.equal(headers.expires, "2026-11-29T04:33:31.139000+00:00");
    assert.deepEqual(headers.timelimit, [10, 5]);
  });

  it("reads times with an offset, with microseconds, and naive ones as UTC", () => {
    assert.equal(parseCeleryTime("2026-11-29T04:32:01.139211+00:00", "eta"), Date.UTC(2026, 10, 29, 4, 32, 1, 139));
    assert.equal(parseCeleryTime("2026-11-29T06:32:01+02:00", "eta"), Date.UTC(2026, 10, 29, 4, 32, 1));
    assert.equal(parseCeleryTime("2026-11-29T04:32:01", "eta"), Date.UTC(2026, 10, 29, 4, 32, 1));
    assert.equal(isoWithOffset(0), "1970-01-01T00:00:00.000000+00:00");
    assert.throws(() => parseCeleryTime("tomorrow", "eta"), /header 'eta' is not an ISO-8601 time/);
  });

  it("puts priorities on kombu's sub-lists, lowest number served first", () => {
    assert.equal(priorityList("celery", 0), "celery");
    assert.equal(priorityList("celery", 5), "celery\x06\x163");
    assert.equal(priorityList("celery", 9), "celery\x06\x169");
    assert.deepEqual(priorityLists("q"), ["q", "q\x06\x163", "q\x06\x166", "q\x06\x169"]);
  });

  it("refuses an envelope without a delivery_tag, naming it", () => {
    const broken = JSON.parse(CAPTURED);
    delete broken.properties.delivery_tag;
    assert.throws(
      () => decodeKombuEnvelope(JSON.stringify(broken)),
      (error: unknown) =>
        error instanceof CeleryMessageError && /delivery_tag/.test(error.message) && /tasks\.add/.test(error.message),
    );
  });

  it("refuses a content type other than JSON, a body that is not JSON, and text that is not an envelope", () => {
    const pickled = JSON.parse(CAPTURED);
    pickled["content-type"] = "application/x-python-serialize";
    assert.throws(
      () => decodeKombuEnvelope(JSON.stringify(pickled)),
      /content type "application\/x-python-serialize" is not supported/,
    );
    const garbled = JSON.parse(CAPTURED);
    garbled.body = Buffer.from("[[1, 2], {").toString("base64");
    assert.throws(() => decodeKombuEnvelope(JSON.stringify(garbled)), /the body is not JSON/);
    assert.throws(() => decodeKombuEnvelope("not json"), /not kombu's JSON envelope/);
  });

  it("refuses a body that is not [args, kwargs, embed] and a message without a task header", () => {
    const headers = { id: "x", task: "tasks.add" };
    assert.throws(
      () => parseCeleryMessage(headers, { args: [1] }, "celery", 0),
      /the body is not \[args, kwargs, embed\] \(task 'tasks.add', id x\)/,
    );
    assert.throws(() => parseCeleryMessage({ id: "x" }, [[], {}, null], "celery", 0), /header 'task' is missing/);
    assert.throws(
      () => parseCeleryMessage({ ...headers, timelimit: ["ten", null] }, [[], {}, null], "celery", 0),
      /header 'timelimit' has a hard limit/,
    );
  });

  it("continues a chain: the next step gets the result first, keeps its frozen id and the rest of the chain", () => {
    const last = {
      task: "tasks.mul",
      args: [10],
      kwargs: {},
      options: { task_id: "id-3" },
      subtask_type: null,
      immutable: false,
    } as const;
    const next = {
      task: "tasks.add",
      args: [2],
      kwargs: {},
      options: { task_id: "id-2" },
      subtask_type: null,
      immutable: false,
    } as const;
    const sent = messageOfSignature(next, {
      prepend: [2],
      chain: [last],
      parentId: "id-1",
      rootId: "id-1",
      queue: "celery",
    });
    assert.equal(sent.id, "id-2");
    assert.deepEqual(sent.args, [2, 2]);
    assert.deepEqual(sent.embed.chain, [last]);
    assert.equal(sent.parentId, "id-1");
    const fixed = messageOfSignature(
      { ...next, immutable: true },
      { prepend: [2], parentId: "id-1", rootId: "id-1", queue: "celery" },
    );
    assert.deepEqual(fixed.args, [2]);
  });
});

describe("Celery's Redis result format", () => {
  it("stores a JavaScript error so Python rebuilds an exception of its name with its message", () => {
    assert.deepEqual(toCeleryException(new TypeError("bad")), {
      exc_type: "TypeError",
      exc_message: ["bad"],
      exc_module: null,
    });
  });

  it("reads a Python exception's type (qualified unless builtin), message and traceback", () => {
    assert.deepEqual(
      fromCeleryException({ exc_type: "ValueError", exc_message: ["no"], exc_module: "builtins" }, "Traceback"),
      { name: "ValueError", message: "no", stack: "Traceback" },
    );
    assert.equal(
      fromCeleryException({ exc_type: "ChordError", exc_message: ["x"], exc_module: "celery.exceptions" }, null).name,
      "celery.exceptions.ChordError",
    );
  });

  it("writes the fields Celery's backend writes, date_done only once ready", () => {
    const meta = resultMeta("id", "SUCCESS", 5, { now: 0, parent: "p" });
    assert.deepEqual(meta, {
      status: "SUCCESS",
      result: 5,
      traceback: null,
      children: [],
      date_done: "1970-01-01T00:00:00.000+00:00",
      task_id: "id",
      parent_id: "p",
    });
    assert.equal(resultMeta("id", "RETRY", null, { now: 0 }).date_done, null);
  });

  it("writes Python's repr for the display headers", () => {
    assert.equal(pythonRepr([1, "a'b", null, true, { k: [1.5] }], true), "(1, 'a\\'b', None, True, {'k': [1.5]})");
    assert.equal(pythonRepr([1], true), "(1,)");
  });
});
