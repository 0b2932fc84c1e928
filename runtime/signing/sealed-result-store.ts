import type { MessageGraph } from "../../dsl/graph.ts";
import type { TaskState } from "../../dsl/result.ts";
import type { FinalOutcome, MaybePromise, ResultRecord, ResultStore, StateDetails } from "../result-store.ts";
import type { PayloadBox } from "./payload-box.ts";

/**
 * A result store whose result values are sealed with the app's payload key
 * before they reach the store (the broker node's, over the network) and
 * opened when read. A value that does not open (altered, forged, sealed with
 * a key this app does not hold, or not sealed at all) reads as a FAILURE
 * naming why, never as a value. Everything else passes through unchanged:
 * states, failures' error text and workflow bookkeeping are not sealed (see
 * docs/security.md).
 */
export class SealedResultStore implements ResultStore {
  constructor(
    private readonly inner: ResultStore,
    private readonly box: PayloadBox,
  ) {}

  setState(id: string, task: string, state: TaskState, details?: StateDetails): MaybePromise<void> {
    return this.inner.setState(id, task, state, details);
  }

  complete(id: string, task: string, outcome: FinalOutcome): MaybePromise<boolean> {
    return this.inner.complete(id, task, outcome.state === "SUCCESS" ? { state: "SUCCESS", value: this.box.seal(outcome.value) } : outcome);
  }

  get(id: string): Promise<ResultRecord | undefined> {
    return this.inner.get(id).then((record) => (record === undefined ? undefined : this.opened(record)));
  }

  waitFinal(id: string, timeoutMs: number | undefined, onTimeout: () => Error): Promise<ResultRecord> {
    return this.inner.waitFinal(id, timeoutMs, onTimeout).then((record) => this.opened(record));
  }

  private opened(record: ResultRecord): ResultRecord {
    if (record.value === undefined) return record;
    const plain = this.box.open(record.value);
    if (plain instanceof Uint8Array) return { ...record, value: plain };
    const { value: _sealed, ...rest } = record;
    return { ...rest, state: "FAILURE", error: { name: "SignatureError", message: `the result of task '${record.task}' (${record.id}) cannot be read: ${plain.reason}` } };
  }

  forget(id: string): Promise<void> {
    return this.inner.forget(id);
  }
  saveGraph(graph: MessageGraph): Promise<void> {
    return this.inner.saveGraph(graph);
  }
  graph(id: string): Promise<MessageGraph | undefined> {
    return this.inner.graph(id);
  }
  arrive(key: string, member: number): Promise<number> {
    return this.inner.arrive(key, member);
  }
  claim(key: string): Promise<boolean> {
    return this.inner.claim(key);
  }
  release(key: string): Promise<void> {
    return this.inner.release(key);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
