import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { topicMatches } from "./topic.ts";

const cases: [pattern: string, key: string, matches: boolean][] = [
  ["orders.created", "orders.created", true],
  ["orders.created", "orders.updated", false],
  ["orders.*", "orders.eu", true],
  ["orders.*", "orders", false],
  ["orders.*", "orders.eu.created", false],
  ["*.created", "orders.created", true],
  ["*.*", "a.b", true],
  ["*", "a.b", false],
  ["orders.#", "orders", true],
  ["orders.#", "orders.eu.created", true],
  ["orders.#", "invoices.eu", false],
  ["#", "anything.at.all", true],
  ["#", "", true],
  ["#.created", "created", true],
  ["#.created", "orders.eu.created", true],
  ["#.created", "orders.created.late", false],
  ["a.#.z", "a.z", true],
  ["a.#.z", "a.b.c.z", true],
  ["a.#.z", "a.b.c", false],
  ["a.#.b.#.c", "a.x.b.y.b.c", true],
  ["a.*.#", "a", false],
  ["a.*.#", "a.b", true],
  ["#.*", "", true],
  ["a.b*", "a.bc", false],
];

describe("topicMatches", () => {
  for (const [pattern, key, expected] of cases) {
    it(`${expected ? "matches" : "does not match"} "${key}" against "${pattern}"`, () => {
      assert.equal(topicMatches(pattern, key), expected);
    });
  }
});
