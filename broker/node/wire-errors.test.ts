import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Data } from "effect";
import { DeclarationConflictError, QueueNotFoundError } from "../errors.ts";
import { RemoteBrokerError } from "./protocol.ts";
import { errorFromWire, errorToWire, registerWireErrors } from "./wire-errors.ts";

class ServiceRefusedError extends Data.TaggedError("ServiceRefusedError")<{
  readonly id: string;
  readonly attempts: number;
}> {
  override get message(): string {
    return `service refused ${this.id} after ${this.attempts} attempts`;
  }
}

describe("errors across the wire", () => {
  it("rebuilds a contract error as the same class with the same fields", () => {
    const sent = new DeclarationConflictError({ kind: "queue", name: "q", reason: "durable differs" });
    const received = errorFromWire(errorToWire(sent), "declareQueue");
    assert.ok(received instanceof DeclarationConflictError);
    assert.deepEqual(
      { kind: received.kind, name: received.name, reason: received.reason },
      { kind: "queue", name: "q", reason: "durable differs" },
    );
    assert.equal(received.message, sent.message);
  });

  it("rebuilds an error a layer above registered", () => {
    registerWireErrors({ ServiceRefusedError });
    const received = errorFromWire(errorToWire(new ServiceRefusedError({ id: "t1", attempts: 3 })), "svc.do");
    assert.ok(received instanceof ServiceRefusedError);
    assert.equal(received.attempts, 3);
  });

  it("turns an unknown tag into a RemoteBrokerError carrying the tag, message and operation", () => {
    const received = errorFromWire(
      { tag: "NewerNodeError", message: "something only a newer node says", fields: {} },
      "stats",
    );
    assert.ok(received instanceof RemoteBrokerError);
    assert.equal(received.tag, "NewerNodeError");
    assert.equal(received.op, "stats");
    assert.match(received.message, /stats failed on the broker node: something only a newer node says/);
  });

  it("carries a plain Error and a thrown non-error by name and text", () => {
    assert.deepEqual(errorToWire(new TypeError("bad")), { tag: "TypeError", message: "bad", fields: {} });
    assert.deepEqual(errorToWire("just a string"), { tag: "Error", message: "just a string" });
  });

  it("leaves out fields msgpack cannot carry, keeping the rest", () => {
    const error = new QueueNotFoundError({ queue: "q" });
    (error as unknown as { extra: unknown }).extra = () => {};
    assert.deepEqual(errorToWire(error).fields, { queue: "q" });
  });
});
