import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Exchange } from "./exchange.ts";

describe("Exchange", () => {
  it("routes a direct exchange by exact key, to each matching queue once", () => {
    const ex = new Exchange<string>("jobs", "direct");
    ex.bind("a", "red");
    ex.bind("b", "red");
    ex.bind("a", "red");
    assert.deepEqual(ex.route("red"), ["a", "b"]);
    assert.deepEqual(ex.route("blue"), []);
  });

  it("routes a topic exchange to each queue once even when several of its patterns match", () => {
    const ex = new Exchange<string>("events", "topic");
    ex.bind("audit", "#");
    ex.bind("audit", "order.*");
    ex.bind("orders", "order.*");
    assert.deepEqual(ex.route("order.created"), ["audit", "orders"]);
    assert.deepEqual(ex.route("user.created"), ["audit"]);
  });

  it("sees a binding added after a key was already routed", () => {
    const ex = new Exchange<string>("events", "topic");
    assert.deepEqual(ex.route("order.created"), []);
    ex.bind("orders", "order.#");
    assert.deepEqual(ex.route("order.created"), ["orders"]);
  });

  it("routes a fanout exchange to every bound queue regardless of key", () => {
    const ex = new Exchange<string>("broadcast", "fanout");
    ex.bind("a", "");
    ex.bind("b", "ignored");
    ex.bind("a", "other");
    assert.deepEqual(ex.route("whatever"), ["a", "b"]);
  });
});
