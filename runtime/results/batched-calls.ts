// A run's calls of one kind as one request to the node, each answered as its own would be.
import { ProtocolError } from "../../broker/node/protocol.ts";

/**
 * What a failed batch means: the node does not serve the batched operation
 * ("unserved"), the batch was over its frame limit ("too large"), or each
 * entry failed with it ("failed").
 */
export type BatchFailure = "unserved" | "too large" | "failed";

/** How a batch's answer for one entry becomes that entry's: the value its own call would give, or a throw of its error. */
export type EntryAnswer<A> = (answer: unknown) => A;

/** The answer of `startAll` and `completeAll` for one entry: what `start` or `complete` would answer. */
export const booleanAnswer: EntryAnswer<boolean> = (answer) => answer === true;

/**
 * Calls of one kind made in one run of code, sent to the node as one
 * request: a worker starts (and completes) a burst of deliveries together,
 * an app sends a burst of tasks, and one frame with one answer costs the
 * node and the caller far less than a request and an answer each. The batch
 * goes out through `schedule`, so a call waits for no timer and no other
 * event: `queueMicrotask` sends it once the run's promise callbacks have
 * run; the client's `sendSoon` also sends it before anything else the
 * client is asked, so nothing asked after it overtakes it (an app's sends).
 *
 * @example
 * const starts = new BatchedCalls<WireStart, boolean>(
 *   (batch) => client.call(ops.startAll, [batch]),
 *   (start) => client.call(ops.start, start),
 *   (error) => (error instanceof FrameTooLargeError ? "too large" : "failed"),
 *   booleanAnswer,
 *   queueMicrotask,
 * );
 * await starts.add([id, task, null]); // true: STARTED recorded
 */
export class BatchedCalls<E, A> {
  private entries: E[] = [];
  private resolvers: ((answer: A) => void)[] = [];
  private rejecters: ((error: unknown) => void)[] = [];
  private bytes = 0;
  /** Whether the node lacks the batched operation: set by its "unknown op" answer, for good. */
  private singly = false;
  private readonly flushNow = () => this.flush();

  /**
   * @param sendAll one request for a batch, answering each entry in order
   * @param sendOne one request for one entry (a lone one, or a node without the batched operation)
   * @param afterFailure what a failed `sendAll` means: the node does not serve it (send each entry on its own
   * from now on), this batch was too large for it (send these entries on their own), or a failure of each entry
   * @param answerOf turns the batch's answer for an entry into that entry's
   * @param schedule runs the flush of a batch begun now, soon
   * @param maxBytes a batch is sent early once the sizes given to `add` reach this
   */
  constructor(
    private readonly sendAll: (batch: E[]) => Promise<readonly unknown[]>,
    private readonly sendOne: (entry: E) => Promise<A>,
    private readonly afterFailure: (error: unknown) => BatchFailure,
    private readonly answerOf: EntryAnswer<A>,
    private readonly schedule: (flush: () => void) => void,
    private readonly maxBytes = 256 * 1024,
    private readonly maxEntries = 1_024,
  ) {}

  /** Answer `entry` with the turn's others; `bytes`, its rough size on the wire, bounds the batch's frame. */
  add(entry: E, bytes = 0): Promise<A> {
    if (this.singly) return this.sendOne(entry);
    if (this.entries.length === 0) this.schedule(this.flushNow);
    const answer = new Promise<A>((resolve, reject) => {
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
    if (entries.length === 1) {
      this.sendOne(entries[0]).then(resolvers[0], rejecters[0]);
      return;
    }
    this.sendAll(entries).then(
      (answers) => {
        if (!Array.isArray(answers) || answers.length !== resolvers.length) {
          const error = new ProtocolError({
            reason: `the node answered a batch of ${resolvers.length} with ${Array.isArray(answers) ? `${answers.length} answers` : "no list"}`,
          });
          for (const reject of rejecters) reject(error);
          return;
        }
        for (let i = 0; i < resolvers.length; i++) {
          let answer: A;
          try {
            answer = this.answerOf(answers[i]);
          } catch (error) {
            rejecters[i](error);
            continue;
          }
          resolvers[i](answer);
        }
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
