// The result store of an app in signed mode. Two things in the store decide
// what a worker does next, and both are protected here:
//
// - Workflow graphs: a worker sends (and signs) the later steps of a canvas
//   from the graph stored when it was applied, so a graph altered in the
//   store would make workers sign arguments nobody sent. The graph is stored
//   encoded and signed by the app that applied the canvas (sealed too, with
//   encryption), and read back only when a trusted key signed it.
// - Result values: a later step's input and a chord callback's arguments are
//   read from the store, as is what `get()` returns. A worker stores each
//   SUCCESS value signed with its key, bound to the task's id and name
//   (signed-result.ts), and sealed for that task's result with encryption;
//   a value read back that no trusted key signed for this task (forged,
//   altered, moved from another record, missing) or that does not open reads
//   as a FAILURE naming why (a SignatureError), never as a value.
//
// Failures' error text and join counters pass through unchanged (see docs/security.md).
//
import { Codec } from "../../../broker/codec.ts";
import type { MessageGraph } from "../../../dsl/graph.ts";
import type { TaskState } from "../../../dsl/result.ts";
import type {
  FinalOutcome,
  MaybePromise,
  ResultRecord,
  ResultStore,
  StateDetails,
} from "../../results/result-store.ts";
import type { BatchSigner } from "../message-signer.ts";
import { SigningBatch } from "../signing-batch.ts";
import type { MessageVerifier } from "../message-verifier.ts";
import { sealContext, type PayloadBox } from "../payload-box.ts";
import { ResultSigner, readSignedResult } from "./signed-result.ts";
import { SignatureError, SigningConfigError } from "../signing-errors.ts";

/** What protects the store: the app's signer (and its signing batch) and verifier, and its payload box when it encrypts. */
export interface ProtectedStoreOptions {
  readonly signer?: BatchSigner;
  /** The batch results are signed in, shared with the app's messages; one of the signer's own without it. */
  readonly batch?: SigningBatch;
  readonly verifier?: MessageVerifier;
  readonly box?: PayloadBox;
  /**
   * The store is in this process and hands back the very buffers it was
   * given, so this app's own values are known on sight (default true). A
   * store over a connection decodes a new buffer for every read, so keeping
   * them would cost a weak entry per result and never be used.
   */
  readonly inProcess?: boolean;
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
  private readonly results: ResultSigner | undefined;
  /**
   * Values this app signed and stored, by the identity of the stored buffer,
   * with the task they were signed for and the value before signing. A store
   * in this process hands back the very buffer it was given: reading it needs
   * neither a check nor an opening, and what is returned is what was signed,
   * whatever became of the buffer's bytes. Any other buffer is verified.
   */
  private readonly ownValues = new WeakMap<
    Uint8Array,
    { readonly id: string; readonly task: string; readonly value: Uint8Array }
  >();

  constructor(
    private readonly inner: ResultStore,
    private readonly options: ProtectedStoreOptions,
  ) {
    const batch = options.batch ?? (options.signer === undefined ? undefined : new SigningBatch(options.signer));
    this.results = batch === undefined ? undefined : new ResultSigner(batch);
  }

  setState(id: string, task: string, state: TaskState, details?: StateDetails): MaybePromise<void> {
    return this.inner.setState(id, task, state, details);
  }

  start(id: string, task: string, details?: StateDetails): MaybePromise<boolean> {
    return this.inner.start(id, task, details);
  }

  complete(id: string, task: string, outcome: FinalOutcome): MaybePromise<boolean> {
    if (outcome.state !== "SUCCESS") return this.inner.complete(id, task, outcome);
    const { box } = this.options;
    const payload = box === undefined ? outcome.value : box.seal(outcome.value, sealContext("result", id));
    // Without a signing key the value is stored as it is, and readers refuse it as unsigned.
    if (this.results === undefined) return this.inner.complete(id, task, { state: "SUCCESS", value: payload });
    return this.results.sign(id, task, payload).then((value) => {
      if (this.options.inProcess !== false) this.ownValues.set(value, { id, task, value: outcome.value });
      return this.inner.complete(id, task, { state: "SUCCESS", value });
    });
  }

  get(id: string): Promise<ResultRecord | undefined> {
    return this.inner.get(id).then((record) => (record === undefined ? undefined : this.opened(record)));
  }

  waitFinal(id: string, timeoutMs: number | undefined, onTimeout: () => Error): Promise<ResultRecord> {
    return this.inner.waitFinal(id, timeoutMs, onTimeout).then((record) => this.opened(record));
  }

  /** The record with its value verified and opened; a SUCCESS whose value cannot be trusted reads as a FAILURE naming why. */
  private opened(record: ResultRecord): ResultRecord {
    if (record.state !== "SUCCESS" && record.value === undefined) return record;
    const { value: stored, ...rest } = record;
    if (record.state !== "SUCCESS") return rest;
    const own = stored === undefined ? undefined : this.ownValues.get(stored);
    if (own !== undefined && own.id === record.id && own.task === record.task) return { ...rest, value: own.value };
    const { verifier, box } = this.options;
    const refuse = (keyId: string, reason: string): ResultRecord => ({
      ...rest,
      state: "FAILURE",
      error: {
        name: "SignatureError",
        message: new SignatureError({ id: record.id, task: record.task, keyId, reason }).message.replace(
          "was refused and not run",
          "has a result that cannot be trusted",
        ),
      },
    });
    if (verifier === undefined)
      return refuse("(none)", "this app has no trusted keys (signing.trusted) to verify results with");
    const read = readSignedResult(verifier, record);
    if (!read.ok) return refuse(read.keyId, read.reason);
    if (box === undefined) return { ...rest, value: read.payload };
    const plain = box.open(read.payload, sealContext("result", record.id));
    if (!(plain instanceof Uint8Array)) return refuse(read.keyId, plain.reason);
    return { ...rest, value: plain };
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
    if (box !== undefined) body = box.seal(body, sealContext("graph", graph.id));
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
      const plain = box.open(body, sealContext("graph", id));
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
