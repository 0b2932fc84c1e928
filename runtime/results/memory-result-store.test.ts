import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryResultStore } from "./result-store.ts";

describe("MemoryResultStore", () => {
  it("records a new id's state without a look-up, and it reads back and moves on as any record", async () => {
    const store = new MemoryResultStore();
    store.setState("t-1", "add", "PENDING", { newId: true });
    const pending = await store.get("t-1");
    assert.equal(pending?.state, "PENDING");
    assert.equal(pending?.task, "add");
    assert.equal("newId" in (pending as object), false, "the hint is not kept in the record");
    assert.equal(await store.start("t-1", "add"), true);
    assert.equal(await store.complete("t-1", "add", { state: "SUCCESS", value: Uint8Array.of(3) }), true);
    assert.equal((await store.get("t-1"))?.state, "SUCCESS");
  });

  it("keeps the newest record when a hint was wrong and the id was held already", async () => {
    const store = new MemoryResultStore({ maxResults: 4 });
    store.setState("t-1", "add", "PENDING");
    // Two more writes age "t-1" into the old generation; a wrong hint then writes it anew.
    store.setState("t-2", "add", "PENDING");
    store.setState("t-3", "add", "PENDING");
    store.setState("t-1", "add", "RETRY", { newId: true, retries: 1 });
    const record = await store.get("t-1");
    assert.equal(record?.state, "RETRY");
    assert.equal(record?.retries, 1);
  });

  it("keeps the values of tasks that returned nothing as one shared array, and every other value as given", async () => {
    const store = new MemoryResultStore();
    const nothing = () => Uint8Array.of(0xc7, 0, 0);
    store.complete("a", "t", { state: "SUCCESS", value: nothing() });
    store.complete("b", "t", { state: "SUCCESS", value: nothing() });
    store.complete("c", "t", { state: "SUCCESS", value: Uint8Array.of(0xc0) });
    const three = Uint8Array.of(3);
    store.complete("d", "t", { state: "SUCCESS", value: three });
    const [a, b, c, d] = await Promise.all(["a", "b", "c", "d"].map((id) => store.get(id)));
    assert.equal(a?.value, b?.value, "one array for both");
    assert.deepEqual([...(a?.value ?? [])], [0xc7, 0, 0]);
    assert.deepEqual([...(c?.value ?? [])], [0xc0]);
    assert.equal(d?.value, three);
  });

  it("keeps a SUCCESS that came with no value, or with no bytes, as it came", async () => {
    const store = new MemoryResultStore();
    assert.equal(store.complete("a", "t", { state: "SUCCESS" } as never), true);
    assert.equal(store.complete("b", "t", { state: "SUCCESS", value: "not bytes" } as never), true);
    assert.equal((await store.get("a"))?.value, undefined);
    assert.equal((await store.get("b"))?.value as unknown, "not bytes");
  });
});
