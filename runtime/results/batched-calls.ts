// A turn's calls of one kind as one request to the node, each answered as its own would be.
import { ProtocolError } from "../../broker/node/protocol.ts";

/**
 * What a failed batch means: the node does not serve the batched operation
 * ("unserved"), the batch was over its frame limit ("too large"), or each
 * entry failed with it ("failed").
 */
export type BatchFailure = "unserved" | "too large" | "failed";

/**
 * Calls of one kind made in one event-loop turn, sent to the node as one
 * request: a worker starts (and completes) a burst of deliveries together,
 * and one frame with one answer costs the node and the worker far less than
 * a request and an answer each. The batch goes out when the turn's
 * microtasks run, so a call waits for no timer and no other event.
 *
 * @example
 * const starts = new BatchedCalls<WireStart>(
 *   (batch) => client.call(ops.startAll, [batch]),
 *   (start) => client.call(ops.start, start),
 *   (error) => (error instanceof FrameTooLargeError ? "too large" : "failed"),
 * );
 * await starts.add([id, task, null]); // true: STARTED recorded
 */
export class BatchedCalls<E> {
  private entries: E[] = [];
  private resolvers: ((answer: boolean) => void)[] = [];
  private rejecters: ((error: unknown) => void)[] = [];
  private bytes = 0;
  /** Whether the node lacks the batched operation: set by its "unknown op" answer, for good. */
  private singly = false;
  private readonly flushNow = () => this.flush();

  /**
   * @param sendAll one request for a batch, answering each entry in order
   * @param sendOne one request for one entry (a node without the batched operation)
   * @param afterFailure what a failed `sendAll` means: the node does not serve it (send each entry on its own
   * from now on), this batch was too large for it (send these entries on their own), or a failure of each entry
   * @param maxBytes a batch is sent early once the sizes given to `add` reach this
   */
  constructor(
    private readonly sendAll: (batch: E[]) => Promise<boolean[]>,
    private readonly sendOne: (entry: E) => Promise<boolean>,
    private readonly afterFailure: (error: unknown) => BatchFailure,
    private readonly maxBytes = 256 * 1024,
    private readonly maxEntries = 1_024,
  ) {}

  /** Answer `entry` with the turn's others; `bytes`, its rough size on the wire, bounds the batch's frame. */
  add(entry: E, bytes = 0): Promise<boolean> {
    if (this.singly) return this.sendOne(entry);
    if (this.entries.length === 0) queueMicrotask(this.flushNow);
    const answer = new Promise<boolean>((resolve, reject) => {
      this.resolvers.push(resolve);
      this.rejecters.push(reject);
    });
    this.entries.push(entry);
    this.bytes += bytes;
    if (this.bytes >= this.maxBytes || this.entries.length >= this.maxEntries) this.flush();
    return answer;
  }

  private flush(): void {
    const { entries, resolvers, rejecters } = this;
    if (entries.length === 0) return;
    this.entries = [];
    this.resolvers = [];
    this.rejecters = [];
    this.bytes = 0;
    const sent = entries.length === 1 ? this.sendOne(entries[0]).then((one) => [one]) : this.sendAll(entries);
    sent.then(
      (answers) => {
        if (!Array.isArray(answers) || answers.length !== resolvers.length) {
          const error = new ProtocolError({
            reason: `the node answered a batch of ${resolvers.length} with ${Array.isArray(answers) ? `${answers.length} answers` : "no list"}`,
          });
          for (const reject of rejecters) reject(error);
          return;
        }
        for (let i = 0; i < resolvers.length; i++) resolvers[i](answers[i] === true);
      },
      (error: unknown) => {
        const failure = this.afterFailure(error);
        if (failure === "failed") {
          for (const reject of rejecters) reject(error);
          return;
        }
        if (failure === "unserved") this.singly = true;
        for (let i = 0; i < entries.length; i++) this.sendOne(entries[i]).then(resolvers[i], rejecters[i]);
      },
    );
  }
}
