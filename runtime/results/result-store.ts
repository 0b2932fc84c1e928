// Where task states, results and workflow bookkeeping live: the ResultStore interface and
// the in-memory store. The interface is asynchronous so a remote store (the broker node's)
// can implement it; the in-memory store answers at once. Values are stored encoded
// (msgpack), so every reader gets its own copy and a value that cannot cross a process
// boundary fails the task that produced it, here as it would over a network.
import { LRUCache } from "lru-cache";
import type { OutcomeAck } from "../../broker/transport.ts";
import { GenerationalMap } from "./generational-map.ts";
import { ResultWaiters } from "./result-waiters.ts";
import type { MessageGraph } from "../../dsl/graph.ts";
import type { RemoteErrorInfo, TaskState } from "../../dsl/result.ts";
import { READY_STATES } from "../../dsl/result.ts";

/**
 * A task's state as a result store keeps it: its value or error, retries, workflow step and progress.
 *
 * @example
 * const record = await app.results.get(result.id); // { state: "SUCCESS", ... } once finished
 */
export interface ResultRecord {
  readonly id: string;
  readonly task: string;
  readonly state: TaskState;
  /** Encoded value, on SUCCESS (read it, never write into it: a store may share one between records). */
  readonly value?: Uint8Array;
  /** On FAILURE (and REVOKED): what went wrong, with the remote stack. */
  readonly error?: RemoteErrorInfo;
  readonly retries: number;
  readonly updatedAt: number;
  /** For a step of a workflow: the workflow id and the step's node index. */
  readonly workflow?: string;
  readonly node?: number;
  /** What the running task last reported of itself (`this.progress(...)`), encoded; kept once it finishes. */
  readonly info?: Uint8Array;
}

export interface StateDetails {
  readonly retries?: number;
  readonly workflow?: string;
  readonly node?: number;
  /** The task's own report of its progress, encoded: replaces the one recorded. */
  readonly info?: Uint8Array;
  /**
   * The id was made for this send just now, so nothing is recorded under it
   * yet: a store may record the state without looking for a record first.
   */
  readonly newId?: true;
}

export type FinalOutcome =
  | { readonly state: "SUCCESS"; readonly value: Uint8Array }
  | { readonly state: "FAILURE"; readonly error: RemoteErrorInfo }
  | {
      readonly state: "REVOKED";
      readonly error: RemoteErrorInfo;
      /**
       * Refuse (return false) if the task is `STARTED`: a revocation without
       * `terminate` lets a running task finish. Checked in the same step as the
       * write, so a revoke racing a worker's `STARTED` has one winner: either
       * the task is recorded REVOKED before it starts, or it runs and records
       * its own outcome.
       */
      readonly unlessStarted?: boolean;
    };

/**
 * A store that can answer at once may return a plain value instead of a
 * promise from the two writes made for every task; callers on the dispatch
 * path then go on without waiting a turn.
 */
export type MaybePromise<T> = T | Promise<T>;

/**
 * Where task states, results and workflow bookkeeping are kept: in memory,
 * on a broker node, or in a store of your own passed as `createApp({ results })`.
 *
 * @example
 * const app = createApp({ results: new MemoryResultStore({ maxResults: 10_000 }) });
 */
export interface ResultStore {
  /** Record a non-final state (PENDING when sent, RECEIVED, RETRY). Never overwrites a final state. */
  setState(id: string, task: string, state: TaskState, details?: StateDetails): MaybePromise<void>;
  /**
   * Record that a worker starts the task (STARTED), unless a final state is
   * recorded (the task was revoked, or finished, before this delivery): then
   * change nothing and return false, and the worker does not run it. In one
   * step with the check, like `complete` with `unlessStarted`, so a
   * revocation racing the start has one winner.
   */
  start(id: string, task: string, details?: StateDetails): MaybePromise<boolean>;
  /**
   * Record a final state. The first final state wins: returns false (and
   * changes nothing) if one is already recorded, or if a REVOKED outcome with
   * `unlessStarted` finds the task STARTED.
   */
  complete(id: string, task: string, outcome: FinalOutcome): MaybePromise<boolean>;
  /**
   * `complete`, and the broker acknowledges `ack`'s delivery once the
   * outcome is recorded (never if recording fails), so the worker sends no
   * ack of its own: one request where there were two, one after the other.
   * Undefined, having done nothing, when this store cannot (a store not on
   * the delivery's connection, an older node): then call `complete`.
   */
  completeAndAck?(id: string, task: string, outcome: FinalOutcome, ack: OutcomeAck): Promise<boolean> | undefined;
  get(id: string): Promise<ResultRecord | undefined>;
  /** Resolve with the record once it is final; reject with `onTimeout()` after `timeoutMs`. */
  waitFinal(id: string, timeoutMs: number | undefined, onTimeout: () => Error): Promise<ResultRecord>;
  forget(id: string): Promise<void>;
  saveGraph(graph: MessageGraph): Promise<void>;
  graph(id: string): Promise<MessageGraph | undefined>;
  /** Count `member` as arrived at the join `key` and return how many distinct members have (atomic; a member counted twice counts once). */
  arrive(key: string, member: number): Promise<number>;
  /** True the first time `key` is claimed, false ever after (for once-only actions such as error callbacks). */
  claim(key: string): Promise<boolean>;
  /** Undo a claim whose action failed, so it can be tried again. */
  release(key: string): Promise<void>;
  /**
   * Hold `key` for task `id` for `ttlMs` unless another task holds it: resolves
   * with the id that holds it after the call (`id` itself when this call took
   * it). Atomic: among concurrent callers, from any process, exactly one takes
   * a free key and every other is told its id. What de-duplicated sends and
   * caller-chosen task ids rest on.
   */
  reserve(key: string, id: string, ttlMs: number): Promise<string>;
  /**
   * `reserve` of several keys for `id`, each with its own time, in one call
   * (one request to a node): resolves with each key's holder, in order.
   * Stores without it are called once per key.
   */
  reserveAll?(keys: readonly string[], id: string, ttlsMs: readonly number[]): Promise<readonly string[]>;
  /**
   * `reserve` of members of the set `key` for `id`: for each member in order,
   * whether `id` holds it after the call (true when this call took it or `id`
   * already held it; false when another id does). A call that takes a member
   * keeps the set at least `ttlMs` from now (never shorter than before); one
   * that finds every member held changes nothing. One entry
   * per set rather than per member: what a signing worker pool claims the
   * messages of one signed batch with. Stores without it reserve one key per member.
   */
  reserveMembers?(key: string, members: readonly number[], id: string, ttlMs: number): Promise<readonly boolean[]>;
  close(): Promise<void>;
}

/** How long a finished task's record is kept unless told otherwise: one day. */
export const DEFAULT_RESULT_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Bounds and expiry of an in-memory result store.
 *
 * @example
 * new MemoryResultStore({ maxResults: 10_000, ttlMs: 60 * 60_000 });
 */
export interface MemoryResultStoreOptions {
  /** Most records kept; the least recently written go first, in bulk (see GenerationalMap). Default 100,000. */
  readonly maxResults?: number;
  /** Records (and workflow bookkeeping) expire after this many ms. Default one day. */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

/**
 * One thing a MemoryResultStore holds, with the time it was written: what a
 * durable store (see durable-result-store.ts) compacts its log to and puts
 * back after a restart.
 */
export type StoreEntry =
  | { readonly kind: "record"; readonly record: ResultRecord }
  | { readonly kind: "graph"; readonly graph: MessageGraph; readonly at: number }
  | { readonly kind: "join"; readonly key: string; readonly members: readonly number[]; readonly at: number }
  | { readonly kind: "claim"; readonly key: string; readonly at: number }
  | { readonly kind: "reservation"; readonly key: string; readonly id: string; readonly until: number }
  | {
      readonly kind: "members";
      readonly key: string;
      readonly id: string;
      readonly members: readonly number[];
      readonly until: number;
    };

/** A set of members reserved under one key (reserveMembers): each member's holder, and until when the set is kept. */
interface MemberSet {
  readonly holders: Map<number, string>;
  until: number;
}

/** The store's own, mutable copy of a record; readers get snapshots. */
type StoredRecord = { -readonly [K in keyof ResultRecord]: ResultRecord[K] };

/** msgpack of `undefined` (the strict codec's empty extension 0) and of `null`: what a task that returns nothing leaves. */
const UNDEFINED_VALUE = Uint8Array.of(0xc7, 0, 0);
const NULL_VALUE = Uint8Array.of(0xc0);

/**
 * The value as a record keeps it: one array for all the tasks that returned
 * nothing, since each small array a store holds for long costs the collector
 * about a microsecond (most of what storing the results of fire-and-forget
 * tasks cost, measured on the dispatch path).
 */
const sharedIfNothing = (value: Uint8Array): Uint8Array => {
  // A SUCCESS sent to a node may hold anything, or nothing: kept as it came, for the reader to refuse.
  if (!(value instanceof Uint8Array)) return value;
  if (value.length === 3 && value[0] === 0xc7 && value[1] === 0 && value[2] === 0) return UNDEFINED_VALUE;
  if (value.length === 1 && value[0] === 0xc0) return NULL_VALUE;
  return value;
};

/**
 * The in-memory result store: bounded (the least recently written records go
 * first once `maxResults` is reached) and expiring. Waiters are woken by
 * the write that finishes a task, never by polling.
 *
 * @example
 * const store = new MemoryResultStore({ maxResults: 10_000, ttlMs: 60_000 });
 */
export class MemoryResultStore implements ResultStore {
  private readonly records: GenerationalMap<string, StoredRecord>;
  private readonly graphs: LRUCache<string, MessageGraph>;
  private readonly counters: LRUCache<string, number>;
  private readonly joins: LRUCache<string, Set<number>>;
  /** Reserved keys, each with the task holding it and until when; expiry read from `now`, so a virtual clock moves it. */
  private readonly reservations: LRUCache<string, { readonly id: string; readonly until: number }>;
  /** Made on first use: an LRU cache allocates for its bound up front, and only a node serving signing workers reserves members. */
  private memberSets: LRUCache<string, MemberSet> | undefined;
  private readonly max: number;
  private readonly waiters = new ResultWaiters();
  private readonly now: () => number;
  private readonly ttl: number;

  constructor(options: MemoryResultStoreOptions = {}) {
    const max = options.maxResults ?? 100_000;
    const ttl = options.ttlMs ?? DEFAULT_RESULT_TTL_MS;
    this.now = options.now ?? Date.now;
    this.ttl = ttl;
    // Expiry of records is checked here (fresh()) from the age each record carries.
    this.records = new GenerationalMap(Math.max(2, max));
    this.graphs = new LRUCache({ max: Math.max(1, Math.ceil(max / 10)), ttl });
    this.counters = new LRUCache({ max, ttl });
    this.joins = new LRUCache({ max, ttl });
    this.reservations = new LRUCache({ max });
    this.max = max;
  }

  setState(id: string, task: string, state: TaskState, details?: StateDetails): void {
    // A new id's look-up would miss in both generations: on the dispatch path, the costliest of the store's calls.
    const now = this.now();
    const current = details?.newId === true ? undefined : this.fresh(this.records.get(id), now);
    this.write(current, id, task, state, details, now);
  }

  /** Record `state` over `current`, the record held for `id` (one look-up and one clock reading, made by the caller). */
  private write(
    current: StoredRecord | undefined,
    id: string,
    task: string,
    state: TaskState,
    details: StateDetails | undefined,
    now: number,
  ): void {
    if (current === undefined) {
      const record: StoredRecord = { id, task, state, retries: details?.retries ?? 0, updatedAt: now };
      if (details?.workflow !== undefined) {
        record.workflow = details.workflow;
        record.node = details.node;
      }
      if (details?.info !== undefined) record.info = details.info;
      this.records.add(id, record);
    } else if (!READY_STATES.has(current.state)) {
      // In place: a state change of a record already held needs no second cache write.
      current.state = state;
      current.task = task;
      current.updatedAt = now;
      if (details?.retries !== undefined) current.retries = details.retries;
      if (details?.workflow !== undefined) {
        current.workflow = details.workflow;
        current.node = details.node;
      }
      if (details?.info !== undefined) current.info = details.info;
    }
  }

  start(id: string, task: string, details?: StateDetails): boolean {
    const now = this.now();
    const current = this.fresh(this.records.get(id), now);
    if (current !== undefined && READY_STATES.has(current.state)) return false;
    this.write(current, id, task, "STARTED", details, now);
    return true;
  }

  complete(id: string, task: string, outcome: FinalOutcome): boolean {
    const now = this.now();
    let record = this.fresh(this.records.get(id), now);
    if (
      record !== undefined &&
      (READY_STATES.has(record.state) ||
        (record.state === "STARTED" && outcome.state === "REVOKED" && outcome.unlessStarted))
    )
      return false;
    if (record === undefined) record = { id, task, state: outcome.state, retries: 0, updatedAt: 0 };
    record.task = task;
    record.state = outcome.state;
    record.updatedAt = now;
    if (outcome.state === "SUCCESS") record.value = sharedIfNothing(outcome.value);
    else record.error = outcome.error;
    // Its time to live counts from updatedAt; touching keeps a finished record among the recently written.
    this.records.touch(id, record);
    if (this.waiters.has(id)) this.waiters.wake(id, { ...record });
    return true;
  }

  get(id: string): Promise<ResultRecord | undefined> {
    const record = this.fresh(this.records.get(id));
    return Promise.resolve(record === undefined ? undefined : { ...record });
  }

  waitFinal(id: string, timeoutMs: number | undefined, onTimeout: () => Error): Promise<ResultRecord> {
    const current = this.fresh(this.records.get(id));
    if (current !== undefined && READY_STATES.has(current.state)) return Promise.resolve({ ...current });
    return this.waiters.wait(id, timeoutMs, onTimeout).promise;
  }

  /** The record unless it has outlived the time to live (then it is dropped). */
  private fresh(record: StoredRecord | undefined, now = this.now()): StoredRecord | undefined {
    if (record === undefined || now - record.updatedAt <= this.ttl) return record;
    this.records.delete(record.id);
    return undefined;
  }

  forget(id: string): Promise<void> {
    this.records.delete(id);
    return Promise.resolve();
  }

  saveGraph(graph: MessageGraph): Promise<void> {
    this.graphs.set(graph.id, graph);
    return Promise.resolve();
  }

  graph(id: string): Promise<MessageGraph | undefined> {
    return Promise.resolve(this.graphs.get(id));
  }

  arrive(key: string, member: number): Promise<number> {
    let members = this.joins.get(key);
    if (members === undefined) this.joins.set(key, (members = new Set()));
    members.add(member);
    return Promise.resolve(members.size);
  }

  claim(key: string): Promise<boolean> {
    if (this.counters.has(key)) return Promise.resolve(false);
    this.counters.set(key, 1);
    return Promise.resolve(true);
  }

  release(key: string): Promise<void> {
    this.counters.delete(key);
    return Promise.resolve();
  }

  reserve(key: string, id: string, ttlMs: number): Promise<string> {
    return Promise.resolve(this.reserveNow(key, id, this.now() + ttlMs));
  }

  reserveAll(keys: readonly string[], id: string, ttlsMs: readonly number[]): Promise<string[]> {
    const now = this.now();
    return Promise.resolve(keys.map((key, i) => this.reserveNow(key, id, now + ttlsMs[i])));
  }

  /** `reserve` without waiting a turn, to a given time (a durable store logs it). */
  reserveNow(key: string, id: string, until: number): string {
    const held = this.reservations.get(key);
    if (held !== undefined && held.until > this.now()) return held.id;
    this.reservations.set(key, { id, until });
    return id;
  }

  reserveMembers(key: string, members: readonly number[], id: string, ttlMs: number): Promise<boolean[]> {
    return Promise.resolve(this.reserveMembersNow(key, members, id, this.now() + ttlMs).held);
  }

  /**
   * `reserveMembers` without waiting a turn, the set kept to at least `until`
   * when the call takes a member: which members `id` holds after the call,
   * and those this call took (what a durable store logs).
   */
  reserveMembersNow(
    key: string,
    members: readonly number[],
    id: string,
    until: number,
  ): { held: boolean[]; taken: number[] } {
    const sets = (this.memberSets ??= new LRUCache({ max: this.max }));
    let set = sets.get(key);
    if (set === undefined || set.until <= this.now()) {
      set = { holders: new Map(), until };
      sets.set(key, set);
    }
    const held: boolean[] = new Array(members.length);
    const taken: number[] = [];
    for (let i = 0; i < members.length; i++) {
      const holder = set.holders.get(members[i]);
      if (holder === undefined) {
        set.holders.set(members[i], id);
        taken.push(members[i]);
      }
      held[i] = holder === undefined || holder === id;
    }
    // Kept longer only for what this call took: a call that finds every member held changes nothing.
    if (taken.length > 0 && until > set.until) set.until = until;
    return { held, taken };
  }

  close(): Promise<void> {
    this.waiters.clear();
    return Promise.resolve();
  }

  /** The record of `id` as it is now, without waiting a turn (a durable store logs what a write left). */
  peek(id: string): ResultRecord | undefined {
    return this.fresh(this.records.get(id));
  }

  /** Everything held that has not expired, with its write time; records and bookkeeping each least recently written first. */
  *contents(): IterableIterator<StoreEntry> {
    const now = this.now();
    for (const record of this.records.values())
      if (now - record.updatedAt <= this.ttl) yield { kind: "record", record };
    // The caches know how long an entry has left, so its write time is ttl - remaining before now.
    const at = (cache: { getRemainingTTL(key: string): number }, key: string) =>
      now - (this.ttl - cache.getRemainingTTL(key));
    for (const [id, graph] of this.graphs.rentries() as IterableIterator<[string, MessageGraph]>)
      yield { kind: "graph", graph, at: at(this.graphs, id) };
    for (const [key, members] of this.joins.rentries() as IterableIterator<[string, Set<number>]>)
      yield { kind: "join", key, members: [...members], at: at(this.joins, key) };
    for (const key of this.counters.rkeys()) yield { kind: "claim", key, at: at(this.counters, key) };
    for (const [key, { id, until }] of this.reservations.rentries() as IterableIterator<
      [string, { id: string; until: number }]
    >) {
      if (until > now) yield { kind: "reservation", key, id, until };
    }
    const sets = this.memberSets?.rentries() ?? [];
    for (const [key, set] of sets as Iterable<[string, MemberSet]>) {
      if (set.until <= now) continue;
      const byHolder = new Map<string, number[]>();
      for (const [member, holder] of set.holders) {
        const members = byHolder.get(holder);
        if (members === undefined) byHolder.set(holder, [member]);
        else members.push(member);
      }
      for (const [id, members] of byHolder) yield { kind: "members", key, id, members, until: set.until };
    }
  }

  /** Put back an entry of `contents()` as written at its time: it expires when it would have (at once if it has). Oldest first. */
  restore(entry: StoreEntry): void {
    if (entry.kind === "reservation") {
      if (entry.until > this.now()) this.reservations.set(entry.key, { id: entry.id, until: entry.until });
      return;
    }
    if (entry.kind === "members") {
      if (entry.until > this.now()) this.reserveMembersNow(entry.key, entry.members, entry.id, entry.until);
      return;
    }
    const left = this.ttl - (this.now() - (entry.kind === "record" ? entry.record.updatedAt : entry.at));
    if (left <= 0) return;
    switch (entry.kind) {
      case "record":
        return this.records.set(entry.record.id, { ...entry.record });
      case "graph":
        return void this.graphs.set(entry.graph.id, entry.graph, { ttl: left });
      case "join":
        return void this.joins.set(entry.key, new Set(entry.members), { ttl: left });
      case "claim":
        return void this.counters.set(entry.key, 1, { ttl: left });
    }
  }
}
