import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProtocolError } from "../../broker/node/protocol.ts";
import { BatchedCalls, booleanAnswer } from "./batched-calls.ts";

const unknownOp = () => new ProtocolError({ reason: "unknown op 'x.all'" });

/** Batched calls whose requests are recorded; `answer` answers each entry. */
const recorded = (
  answer: (entry: string) => boolean,
  options: { lacksBatch?: boolean; largestBatch?: number; maxEntries?: number } = {},
) => {
  const batches: string[][] = [];
  const singles: string[] = [];
  const calls = new BatchedCalls<string, boolean>(
    async (batch) => {
      if (options.lacksBatch) throw unknownOp();
      if (batch.length > (options.largestBatch ?? Number.POSITIVE_INFINITY)) throw new RangeError("frame too large");
      batches.push(batch);
      return batch.map(answer);
    },
    async (entry) => {
      singles.push(entry);
      return answer(entry);
    },
    (error) =>
      error instanceof RangeError
        ? "too large"
        : error instanceof ProtocolError && error.reason.startsWith("unknown op")
          ? "unserved"
          : "failed",
    booleanAnswer,
    queueMicrotask,
    1_000,
    options.maxEntries ?? 100,
  );
  return { calls, batches, singles };
};

describe("BatchedCalls", () => {
  it("sends the calls of one turn as one request and answers each in order", async () => {
    const { calls, batches, singles } = recorded((entry) => entry !== "b");
    const answers = await Promise.all(["a", "b", "c"].map((entry) => calls.add(entry)));
    assert.deepEqual(answers, [true, false, true]);
    assert.deepEqual(batches, [["a", "b", "c"]]);
    assert.deepEqual(singles, []);
  });

  it("sends a lone call on its own, and calls of a later turn in a request of their own", async () => {
    const { calls, batches, singles } = recorded(() => true);
    assert.equal(await calls.add("a"), true);
    await Promise.all([calls.add("b"), calls.add("c")]);
    assert.deepEqual(singles, ["a"]);
    assert.deepEqual(batches, [["b", "c"]]);
  });

  it("sends a batch early once it holds the most entries or bytes allowed", async () => {
    const { calls, batches } = recorded(() => true, { maxEntries: 2 });
    await Promise.all(["a", "b", "c", "d", "e"].map((entry) => calls.add(entry)));
    assert.deepEqual(batches, [
      ["a", "b"],
      ["c", "d"],
    ]);
    const bySize = recorded(() => true);
    await Promise.all([bySize.calls.add("a", 600), bySize.calls.add("b", 600), bySize.calls.add("c", 10)]);
    assert.deepEqual(bySize.batches, [["a", "b"]]);
    assert.deepEqual(bySize.singles, ["c"]);
  });

  it("sends each call on its own, from then on, when the node does not serve the batch", async () => {
    const { calls, batches, singles } = recorded((entry) => entry !== "b", { lacksBatch: true });
    assert.deepEqual(await Promise.all(["a", "b"].map((entry) => calls.add(entry))), [true, false]);
    assert.deepEqual(await Promise.all(["c", "d"].map((entry) => calls.add(entry))), [true, true]);
    assert.deepEqual(batches, []);
    assert.deepEqual(singles, ["a", "b", "c", "d"]);
  });

  it("sends the entries of a batch too large for a frame on their own, and batches the next turn again", async () => {
    const { calls, batches, singles } = recorded((entry) => entry !== "b", { largestBatch: 2 });
    assert.deepEqual(await Promise.all(["a", "b", "c"].map((entry) => calls.add(entry))), [true, false, true]);
    assert.deepEqual(await Promise.all(["d", "e"].map((entry) => calls.add(entry))), [true, true]);
    assert.deepEqual(singles, ["a", "b", "c"]);
    assert.deepEqual(batches, [["d", "e"]]);
  });

  it("fails every call of a batch the node fails, and keeps batching", async () => {
    let fail = true;
    const calls = new BatchedCalls<string, boolean>(
      async (batch) => {
        if (fail) throw new Error("the log failed");
        return batch.map(() => true);
      },
      async () => true,
      () => "failed",
      booleanAnswer,
      queueMicrotask,
    );
    const failed = await Promise.allSettled([calls.add("a"), calls.add("b")]);
    assert.deepEqual(
      failed.map((settled) => settled.status === "rejected" && (settled.reason as Error).message),
      ["the log failed", "the log failed"],
    );
    fail = false;
    assert.deepEqual(await Promise.all([calls.add("c"), calls.add("d")]), [true, true]);
  });

  it("fails a batch answered with the wrong number of answers, naming both counts", async () => {
    const calls = new BatchedCalls<string, boolean>(
      async () => [true],
      async () => true,
      () => "failed",
      booleanAnswer,
      queueMicrotask,
    );
    const failed = await Promise.allSettled([calls.add("a"), calls.add("b")]);
    for (const settled of failed) {
      assert.equal(settled.status, "rejected");
      assert.match(((settled as PromiseRejectedResult).reason as ProtocolError).reason, /a batch of 2 with 1 answers/);
    }
  });

  it("rejects only the entries whose answer says they failed, and resolves the others", async () => {
    const calls = new BatchedCalls<string, string>(
      async (batch) => batch.map((entry) => (entry.startsWith("bad") ? { refused: entry } : null)),
      async (entry) => entry,
      () => "failed",
      (answer) => {
        if (answer !== null) throw new Error(`refused ${(answer as { refused: string }).refused}`);
        return "sent";
      },
      queueMicrotask,
    );
    const settled = await Promise.allSettled([calls.add("a"), calls.add("bad-b"), calls.add("c")]);
    assert.deepEqual(
      settled.map((one) => (one.status === "fulfilled" ? one.value : (one.reason as Error).message)),
      ["sent", "refused bad-b", "sent"],
    );
  });

  it("flushes through the schedule it is given, once per batch", async () => {
    const scheduled: (() => void)[] = [];
    const batches: string[][] = [];
    const calls = new BatchedCalls<string, boolean>(
      async (batch) => {
        batches.push(batch);
        return batch.map(() => true);
      },
      async () => true,
      () => "failed",
      booleanAnswer,
      (flush) => scheduled.push(flush),
    );
    const answers = Promise.all([calls.add("a"), calls.add("b")]);
    assert.equal(scheduled.length, 1);
    assert.deepEqual(batches, [], "nothing is sent before the schedule runs the flush");
    scheduled[0]();
    assert.deepEqual(await answers, [true, true]);
    assert.deepEqual(batches, [["a", "b"]]);
  });
});
