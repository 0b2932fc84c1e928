import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Decoder, Encoder } from "@msgpack/msgpack";
import { encodeWithEnvelope, publishedEnvelopeBytes } from "./encoded-envelope.ts";
import { RecordArena } from "./pooled-bytes.ts";
import { FrameEncoder } from "./frame-encoder.ts";
import { envelopeFromWire, envelopeToWire } from "./protocol.ts";
import type { Envelope } from "../envelope.ts";

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();
const envelope: Envelope = {
  id: "6f1c-…",
  exchange: "tasks",
  routingKey: "a.b",
  priority: 3,
  eta: 1_700_000_000_000,
  headers: { task: "add", retries: 2, root: null },
  body: new Uint8Array([9, 8, 7, 6]),
};

describe("encoded envelopes", () => {
  it("finds the envelope's exact bytes in a publish request, for every width of request id", () => {
    const alone = encoder.encode(envelopeToWire(envelope));
    for (const requestId of [1, 127, 200, 60_000, 4_000_000_000]) {
      for (const mandatory of [true, false]) {
        const payload = encoder.encode([requestId, "publish", [envelopeToWire(envelope), mandatory]]);
        const bytes = publishedEnvelopeBytes(payload);
        assert.deepEqual(bytes, alone, `request id ${requestId}, mandatory ${mandatory}`);
      }
    }
  });

  it("declines any other layout, so the caller encodes the envelope itself", () => {
    assert.equal(publishedEnvelopeBytes(encoder.encode([1, "publisH", [envelopeToWire(envelope), false]])), undefined);
    assert.equal(publishedEnvelopeBytes(encoder.encode([1, "publish", [envelopeToWire(envelope)]])), undefined);
    assert.equal(
      publishedEnvelopeBytes(encoder.encode([1, "publish", [envelopeToWire(envelope), false, 1]])),
      undefined,
    );
    assert.equal(publishedEnvelopeBytes(encoder.encode([-1, "publish", [envelopeToWire(envelope), false]])), undefined);
    assert.equal(publishedEnvelopeBytes(encoder.encode([1, "publish", [[1, 2], false]])), undefined);
    assert.equal(publishedEnvelopeBytes(new Uint8Array(3)), undefined);
  });

  it("encodes a record around given envelope bytes that reads back as if encoded whole", () => {
    const bytes = encodeWithEnvelope(
      new FrameEncoder(),
      [4, 12_345, "queue"],
      encoder.encode(envelopeToWire(envelope)),
      new RecordArena(),
    );
    const [kind, seq, queue, wire] = decoder.decode(bytes) as [number, number, string, unknown];
    assert.deepEqual([kind, seq, queue], [4, 12_345, "queue"]);
    assert.deepEqual(envelopeFromWire(wire), envelope);
  });
});
