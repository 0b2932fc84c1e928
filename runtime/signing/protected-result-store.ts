// The result store of an app in signed mode. Two things in the store decide
// what a worker does next, and both are protected here:
//
// - Workflow graphs: a worker sends (and signs) the later steps of a canvas
//   from the graph stored when it was applied, so a graph altered in the
//   store would make workers sign arguments nobody sent. The graph is stored
//   encoded and signed by the app that applied the canvas (sealed too, with
//   encryption), and read back only when a trusted key signed it.
// - With encryption, result values: sealed before they reach the store (the
//   broker node's, over the network) and opened when read. A value that does
//   not open (altered, forged, sealed with a key this app does not hold, or
//   not sealed) reads as a FAILURE naming why, never as a value.
//
// States, failures' error text and join counters pass through unchanged (see docs/security.md).
import { Codec } from "../../broker/codec.ts";
import type { MessageGraph } from "../../dsl/graph.ts";
import type { TaskState } from "../../dsl/result.ts";
import type { FinalOutcome, MaybePromise, ResultRecord, ResultStore, StateDetails } from "../results/result-store.ts";
import type { BatchSigner } from "./message-signer.ts";
import type { MessageVerifier } from "./message-verifier.ts";
import type { PayloadBox } from "./payload-box.ts";
import { SignatureError, SigningConfigError } from "./signing-errors.ts";

/** What protects the store: the app's signer and verifier, and its payload box when it encrypts. */
export interface ProtectedStoreOptions {
  readonly signer?: BatchSigner;
  readonly verifier?: MessageVerifier;
  readonly box?: PayloadBox;
}

/** The stored stand-in of a graph: its id, nothing to run, and the signed (and perhaps sealed) encoding. */
interface StoredGraph extends MessageGraph {
  readonly signed: { readonly key: string; readonly signature: string; readonly body: Uint8Array };
}

const GRAPH_DOMAIN = Buffer.from("celerity/graph/1\0", "latin1");
const graphMessage = (id: string, body: Uint8Array): Buffer =>
  Buffer.concat([GRAPH_DOMAIN, Buffer.from(id, "utf16le"), Buffer.from([0, 0]), body]);

export class ProtectedResultStore implements ResultStore {
  private readonly codec = new Codec();

  constructor(
    private readonly inner: ResultStore,
    private readonly options: ProtectedStoreOptions,
  ) {}

  setState(id: string, task: string, state: TaskState, details?: StateDetails): MaybePromise<void> {
    return this.inner.setState(id, task, state, details);
  }

  start(id: string, task: string, details?: StateDetails): MaybePromise<boolean> {
    return this.inner.start(id, task, details);
  }

  complete(id: string, task: string, outcome: FinalOutcome): MaybePromise<boolean> {
    const { box } = this.options;
    return this.inner.complete(
      id,
      task,
      box !== undefined && outcome.state === "SUCCESS" ? { state: "SUCCESS", value: box.seal(outcome.value) } : outcome,
    );
  }

  get(id: string): Promise<ResultRecord | undefined> {
    return this.inner.get(id).then((record) => (record === undefined ? undefined : this.opened(record)));
  }

  waitFinal(id: string, timeoutMs: number | undefined, onTimeout: () => Error): Promise<ResultRecord> {
    return this.inner.waitFinal(id, timeoutMs, onTimeout).then((record) => this.opened(record));
  }

  private opened(record: ResultRecord): ResultRecord {
    const { box } = this.options;
    if (box === undefined || record.value === undefined) return record;
    const plain = box.open(record.value);
    if (plain instanceof Uint8Array) return { ...record, value: plain };
    const { value: _sealed, ...rest } = record;
    return {
      ...rest,
      state: "FAILURE",
      error: {
        name: "SignatureError",
        message: `the result of task '${record.task}' (${record.id}) cannot be read: ${plain.reason}`,
      },
    };
  }

  saveGraph(graph: MessageGraph): Promise<void> {
    const { signer, box } = this.options;
    if (signer === undefined) {
      return Promise.reject(
        new SigningConfigError({
          reason:
            "this app has trusted keys but no signing key (signing.key), so it cannot apply a canvas in signed mode",
        }),
      );
    }
    let body: Uint8Array;
    try {
      body = this.codec.encode(graph, "workflow graph");
    } catch (error) {
      return Promise.reject(error);
    }
    if (box !== undefined) body = box.seal(body);
    const signature = Buffer.from(signer.signDetached(graphMessage(graph.id, body))).toString("base64");
    const stored: StoredGraph = {
      id: graph.id,
      nodes: [],
      errbacks: [],
      output: { list: [] },
      signed: { key: signer.keyId, signature, body },
    };
    return this.inner.saveGraph(stored);
  }

  async graph(id: string): Promise<MessageGraph | undefined> {
    const stored = (await this.inner.graph(id)) as Partial<StoredGraph> | undefined;
    if (stored === undefined) return undefined;
    const refuse = (keyId: string, reason: string) =>
      new SignatureError({ id, task: "(workflow graph)", keyId, reason });
    const { verifier, box } = this.options;
    if (verifier === undefined)
      throw new SigningConfigError({
        reason: "this app has no trusted keys (signing.trusted), so it cannot read a workflow graph in signed mode",
      });
    const signed = stored.signed;
    if (
      signed === undefined ||
      typeof signed.key !== "string" ||
      typeof signed.signature !== "string" ||
      !(signed.body instanceof Uint8Array)
    ) {
      throw refuse("(none)", "the workflow graph in the result store is not signed");
    }
    const signature = Buffer.from(signed.signature, "base64");
    if (stored.id !== id || !verifier.verifyDetached(signed.key, graphMessage(id, signed.body), signature)) {
      throw refuse(signed.key, `the workflow graph in the result store is not signed by a trusted key, or was altered`);
    }
    let body = signed.body;
    if (box !== undefined) {
      const plain = box.open(body);
      if (!(plain instanceof Uint8Array))
        throw refuse(signed.key, `the workflow graph cannot be read: ${plain.reason}`);
      body = plain;
    }
    return this.codec.decode(body) as MessageGraph;
  }

  forget(id: string): Promise<void> {
    return this.inner.forget(id);
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
  reserve(key: string, id: string, ttlMs: number): Promise<string> {
    return this.inner.reserve(key, id, ttlMs);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
