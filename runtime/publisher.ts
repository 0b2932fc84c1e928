// Sending task messages: record the task as PENDING, then publish and wait for the
// broker's confirm; a message no queue receives is refused rather than lost.
import type { Codec } from "../broker/codec.ts";
import type { Envelope } from "../broker/envelope.ts";
import { NodeTransport } from "../broker/node/client/node-transport.ts";
import type { Transport } from "../broker/transport.ts";
import { mergeOptions, type CallOptions } from "../dsl/options.ts";
import { RemoteResultStore, type SentTask } from "./results/remote-result-store.ts";
import type { SentRecord, SentState } from "./results/result-operations.ts";
import type { ResultStore, StateDetails } from "./results/result-store.ts";
import { toEnvelope, type TaskMessage } from "./task-message.ts";
import { type PublishTrace, tracePublish, tracingRegistered } from "./tracing/task-tracing.ts";
import type { TaskOptions } from "./task.ts";

// A task message that no queue receives would leave its result pending forever: refuse it instead.
const MANDATORY = { mandatory: true } as const;

/** The serializable part of a task's default options (what may ride in a message). */
export const callDefaults = (options: TaskOptions | undefined): CallOptions => {
  if (options === undefined) return {};
  // A rate limit is the worker's to enforce: it never rides in a message (its key may be a function).
  const { rateLimit: _rateLimit, ...callable } = options;
  if (callable.retry?.retryOn === undefined) return callable as CallOptions;
  const { retryOn: _retryOn, ...retry } = callable.retry;
  return { ...callable, retry };
};

/**
 * Sends the messages of tasks and records each task's state (PENDING, or
 * RETRY) in one request (see RemoteResultStore.send): what an app connected
 * to a node uses instead of a state write and a publish.
 */
export type RecordedSend = (sent: readonly SentTask[], mandatory: boolean) => Promise<void>;

/**
 * The one-request send of an app whose transport and result store are a
 * node's, on one connection; undefined otherwise (another broker or store,
 * or a transport wrapped to sign what it publishes, whose publish must not
 * be bypassed).
 */
export const recordedSendOf = (transport: Transport, store: ResultStore): RecordedSend | undefined =>
  transport instanceof NodeTransport && store instanceof RemoteResultStore && store.client === transport.client
    ? (sent, mandatory) => store.send(sent, mandatory)
    : undefined;

/** Bytes of bodies a bulk send puts in one request at most (a frame holds 16 MiB); a larger bulk takes several. */
const BULK_REQUEST_BYTES = 1024 * 1024;
/** Allowance per message for its envelope's other fields and its record. */
const ENVELOPE_OVERHEAD_BYTES = 256;

/**
 * Sends task messages: records the task as PENDING (so its id is known, not
 * "unknown"), then publishes and waits for the broker's confirm; over a node,
 * both in one request. A value that cannot be serialized throws before
 * anything is recorded or sent.
 */
export class Publisher {
  /**
   * Called with each task message just before it is published (the app's
   * task-sent event, when it sends events); a promise it returns delays the publish.
   */
  beforePublish: ((message: TaskMessage, envelope: Envelope) => void | Promise<void>) | undefined = undefined;

  constructor(
    private readonly transport: Transport,
    private readonly store: ResultStore,
    private readonly codec: Codec,
    private readonly defaultsOf: (task: string) => CallOptions,
    private readonly now: () => number = Date.now,
    private readonly recordedSend: RecordedSend | undefined = recordedSendOf(transport, store),
  ) {}

  /** The options a message of `task` is sent with: the task's defaults, then `options` over them. */
  optionsFor(task: string, options: CallOptions | undefined): CallOptions {
    return mergeOptions(this.defaultsOf(task), options);
  }

  /**
   * Record PENDING (or RETRY), then publish. The record is written before the
   * publish so that a fast worker's STARTED and SUCCESS always land after it.
   * Resolves once the broker confirms; throws CodecError synchronously-rejected
   * before anything is recorded or sent.
   */
  publish(message: TaskMessage): Promise<void> {
    let envelope: Envelope;
    try {
      envelope = toEnvelope(message, this.codec, this.now());
    } catch (error) {
      return Promise.reject(error);
    }
    const traced = tracePublish(message, envelope);
    if (traced === undefined) return this.publishOne(message, envelope);
    return endingSpans([traced], this.publishOne(message, traced.envelope));
  }

  private publishOne(message: TaskMessage, envelope: Envelope): Promise<void> {
    if (this.recordedSend !== undefined) return this.sendRecorded([message], [envelope]);
    return this.publishEncoded(message, envelope);
  }

  /**
   * Publish many messages: over a node, in one request per megabyte of
   * bodies, confirmed together; elsewhere each as `publish` does, all at
   * once. Every message is encoded before anything is sent, so a value that
   * cannot be serialized sends none. Rejects if any is refused (the others
   * are sent).
   */
  publishMany(messages: readonly TaskMessage[]): Promise<void> {
    const envelopes: Envelope[] = new Array(messages.length);
    try {
      const now = this.now();
      for (let i = 0; i < messages.length; i++) envelopes[i] = toEnvelope(messages[i], this.codec, now);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!tracingRegistered()) return this.publishManyEncoded(messages, envelopes);
    const traces: PublishTrace[] = [];
    for (let i = 0; i < messages.length; i++) {
      const traced = tracePublish(messages[i], envelopes[i]);
      if (traced === undefined) continue;
      traces.push(traced);
      envelopes[i] = traced.envelope;
    }
    return endingSpans(traces, this.publishManyEncoded(messages, envelopes));
  }

  private publishManyEncoded(messages: readonly TaskMessage[], envelopes: Envelope[]): Promise<void> {
    if (this.recordedSend === undefined) {
      const publishMany = this.transport.publishMany;
      if (publishMany !== undefined && this.beforePublish === undefined && messages.every(isUnrecorded))
        return publishMany.call(this.transport, envelopes, MANDATORY);
      const sends: Promise<void>[] = new Array(messages.length);
      for (let i = 0; i < messages.length; i++) sends[i] = this.publishEncoded(messages[i], envelopes[i]);
      return Promise.all(sends).then(() => undefined);
    }
    const requests: Promise<void>[] = [];
    let from = 0;
    let bytes = 0;
    for (let i = 0; i < envelopes.length; i++) {
      const size = envelopes[i].body.byteLength + ENVELOPE_OVERHEAD_BYTES;
      if (i > from && bytes + size > BULK_REQUEST_BYTES) {
        requests.push(this.sendRecorded(messages.slice(from, i), envelopes.slice(from, i)));
        from = i;
        bytes = 0;
      }
      bytes += size;
    }
    requests.push(
      from === 0
        ? this.sendRecorded(messages, envelopes)
        : this.sendRecorded(messages.slice(from), envelopes.slice(from)),
    );
    return requests.length === 1 ? requests[0] : Promise.all(requests).then(() => undefined);
  }

  private sendRecorded(messages: readonly TaskMessage[], envelopes: readonly Envelope[]): Promise<void> {
    const sent: SentTask[] = new Array(messages.length);
    let before: Promise<void>[] | undefined;
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i];
      sent[i] = { envelope: envelopes[i], record: recordOf(message) };
      const waited = this.beforePublish?.(message, envelopes[i]);
      if (waited instanceof Promise) (before ??= []).push(waited);
    }
    const send = this.recordedSend as RecordedSend;
    return before === undefined ? send(sent, true) : Promise.all(before).then(() => send(sent, true));
  }

  private publishEncoded(message: TaskMessage, envelope: Envelope): Promise<void> {
    if (isUnrecorded(message)) return this.send(envelope, message, false);
    const recorded = this.store.setState(message.id, message.task, stateOf(message), detailsOf(message));
    return recorded instanceof Promise
      ? recorded.then(() => this.send(envelope, message, true))
      : this.send(envelope, message, true);
  }

  private send(envelope: Envelope, message: TaskMessage, recorded: boolean): Promise<void> {
    // A workflow's step is the workflow's to record: a refused one is recorded FAILURE by it, and
    // forgetting it first would show a reader, for a moment, a step nobody knows.
    const forgetIfRefused = recorded && message.workflow === undefined;
    const before = this.beforePublish?.(message, envelope);
    if (before instanceof Promise) return before.then(() => this.confirm(envelope, message.id, forgetIfRefused));
    return this.confirm(envelope, message.id, forgetIfRefused);
  }

  private confirm(envelope: Envelope, id: string, forgetIfRefused: boolean): Promise<void> {
    const confirmed = this.transport.publish(envelope, MANDATORY);
    if (!forgetIfRefused) return confirmed;
    return confirmed.catch(async (error: unknown) => {
      // Refused, so never sent: leave no record that would wait for ever. A lost connection is
      // different: the publish may have gone through and its task may even have finished.
      if (!isConnectionLoss(error)) await this.store.forget(id);
      throw error;
    });
  }
}

const isUnrecorded = (message: TaskMessage): boolean =>
  message.options.ignoreResult === true && message.workflow === undefined;

const stateOf = (message: TaskMessage): SentState => (message.retries > 0 ? "RETRY" : "PENDING");

/** The record a message's publish makes: none for a task whose result is ignored (outside a workflow). */
const recordOf = (message: TaskMessage): SentRecord | undefined =>
  isUnrecorded(message) ? undefined : [message.id, message.task, stateOf(message), detailsOf(message) ?? null];

const NEW_ID: StateDetails = Object.freeze({ newId: true });

const detailsOf = (message: TaskMessage): StateDetails | undefined =>
  message.workflow !== undefined
    ? { retries: message.retries, workflow: message.workflow, node: message.node as number }
    : message.retries !== 0
      ? { retries: message.retries }
      : message.newId === true
        ? NEW_ID
        : undefined;

const isConnectionLoss = (error: unknown): boolean => {
  const tag = (error as { _tag?: unknown } | null)?._tag;
  return tag === "ConnectionLostError" || tag === "RequestTimeoutError";
};

/** `sent`, ending each publish span when it settles (with its error if it rejects). */
const endingSpans = (traces: readonly PublishTrace[], sent: Promise<void>): Promise<void> =>
  sent.then(
    () => {
      for (const traced of traces) traced.end();
    },
    (error: unknown) => {
      for (const traced of traces) traced.end(error);
      throw error;
    },
  );
