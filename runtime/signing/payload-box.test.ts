import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PayloadBox, generateBoxKey, sealContext } from "./payload-box.ts";

describe("payload box", () => {
  const box = new PayloadBox([generateBoxKey()]);
  const plain = new TextEncoder().encode("card 4111 1111 1111 1111");

  it("opens what it sealed for the same context", () => {
    const sealed = box.seal(plain, sealContext("result", "a"));
    assert.deepEqual(box.open(sealed, sealContext("result", "a")), plain);
  });

  it("does not open a value sealed for another task, or for another role of the same task", () => {
    const sealed = box.seal(plain, sealContext("result", "a"));
    const moved = box.open(sealed, sealContext("result", "b"));
    assert.ok(!(moved instanceof Uint8Array));
    assert.match(moved.reason, /sealed as "celerity\/result\\u0000a", not as "celerity\/result\\u0000b": moved/);
    const args = box.seal(plain, sealContext("args", "a"));
    assert.ok(!(box.open(args, sealContext("result", "a")) instanceof Uint8Array));
  });

  it("names a value that is not sealed, or altered", () => {
    assert.match((box.open(plain, sealContext("args", "a")) as { reason: string }).reason, /not encrypted/);
    const sealed = box.seal(plain, sealContext("args", "a"));
    sealed[sealed.length - 1] ^= 1;
    assert.match((box.open(sealed, sealContext("args", "a")) as { reason: string }).reason, /does not open/);
  });
});
