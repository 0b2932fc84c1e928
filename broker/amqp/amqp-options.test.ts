import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidArgumentError } from "../errors.ts";
import { mapAmqpError } from "./amqp-errors.ts";
import { redactUrl, resolveAmqpOptions } from "./amqp-options.ts";

describe("amqp options", () => {
  it("refuses a url that is not amqp://, naming it", () => {
    assert.throws(
      () => resolveAmqpOptions("redis://127.0.0.1:6379"),
      (error: Error) => error instanceof InvalidArgumentError && /redis:\/\/127/.test(error.message),
    );
    assert.throws(() => resolveAmqpOptions("not a url"), /not a url/);
  });

  it("refuses a negative heartbeat and a retention without a unit", () => {
    assert.throws(() => resolveAmqpOptions("amqp://h", { heartbeatSeconds: -1 }), /heartbeatSeconds/);
    assert.throws(() => resolveAmqpOptions("amqp://h", { revocationRetention: "7" }), /revocationRetention/);
  });

  it("hides the password in messages", () => {
    assert.equal(redactUrl("amqp://guest:secret@host:5672/v"), "amqp://guest:***@host:5672/v");
  });

  it("maps RabbitMQ's refusals to the contract's errors", () => {
    const refusal = (code: number, text: string) => Object.assign(new Error(text), { code });
    assert.equal(
      mapAmqpError(refusal(404, "NOT_FOUND - no exchange 'x'"), "publish", { kind: "exchange", name: "x" })._tag,
      "ExchangeNotFoundError",
    );
    assert.equal(
      mapAmqpError(refusal(404, "NOT_FOUND - no queue 'q'"), "queue.declare", { kind: "queue", name: "q" })._tag,
      "QueueNotFoundError",
    );
    const conflict = mapAmqpError(
      refusal(
        406,
        "Channel closed by server: 406 (PRECONDITION-FAILED) with message \"PRECONDITION_FAILED - inequivalent arg 'x-max-priority'\"",
      ),
      "queue.declare",
      { kind: "queue", name: "q" },
    );
    assert.equal(conflict._tag, "DeclarationConflictError");
    assert.match(conflict.message, /"q" is already declared differently: inequivalent arg 'x-max-priority'/);
    assert.equal(
      mapAmqpError(refusal(403, "ACCESS_REFUSED"), "publish", { kind: "queue", name: "q" })._tag,
      "AmqpRefusedError",
    );
  });
});
