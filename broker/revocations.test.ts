import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Revocations } from "./revocations.ts";

describe("Revocations", () => {
  it("remembers a revocation until its ttl passes", () => {
    let now = 0;
    const r = new Revocations({ now: () => now, defaultTtlMs: 100 });
    r.revoke("a");
    r.revoke("b", 10);
    now = 50;
    assert.equal(r.has("a"), true);
    assert.equal(r.has("b"), false);
    now = 101;
    assert.equal(r.has("a"), false);
    assert.equal(r.has("never"), false);
  });

  it("extends, never shortens, a revocation made again", () => {
    let now = 0;
    const r = new Revocations({ now: () => now });
    r.revoke("a", 1_000);
    r.revoke("a", 10);
    now = 500;
    assert.equal(r.has("a"), true);
  });

  it("forgets the oldest revocations first beyond maxEntries, keeping the newest", () => {
    let now = 0;
    const r = new Revocations({ now: () => now, maxEntries: 10 });
    for (let i = 0; i < 25; i++) {
      now++;
      r.revoke(`id-${i}`);
    }
    assert.ok(r.size <= 10, `size ${r.size}`);
    assert.equal(r.has("id-24"), true);
    assert.equal(r.has("id-0"), false);
  });

  it("drops expired revocations before evicting live ones when full", () => {
    let now = 0;
    const r = new Revocations({ now: () => now, maxEntries: 3 });
    r.revoke("short-1", 5);
    r.revoke("short-2", 5);
    r.revoke("long", 1_000);
    now = 10;
    r.revoke("new");
    assert.equal(r.has("long"), true);
    assert.equal(r.has("new"), true);
    assert.equal(r.size, 2);
  });

  it("tells every listener, with the terminate flag, until it unsubscribes", () => {
    const r = new Revocations();
    const heard: string[] = [];
    const stop = r.onRevoke((id, { terminate }) => heard.push(`${id}:${terminate}`));
    r.revoke("a");
    r.revoke("b", undefined, true);
    stop();
    r.revoke("c");
    assert.deepEqual(heard, ["a:false", "b:true"]);
  });

  it("reports a throwing listener and still tells the others", () => {
    const errors: unknown[] = [];
    const r = new Revocations({ onListenerError: (e) => errors.push(e) });
    const heard: string[] = [];
    r.onRevoke(() => {
      throw new Error("bad listener");
    });
    r.onRevoke((id) => heard.push(id));
    r.revoke("x");
    assert.deepEqual(heard, ["x"]);
    assert.equal(errors.length, 1);
  });
});
