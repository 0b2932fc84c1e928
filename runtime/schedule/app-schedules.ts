// An app's periodic tasks: `app.schedule`, `app.schedules` (changed at run time) and
// `app.beat`, with the schedule store chosen by the app's broker.
import { nowOf, systemClock, type Clock } from "../../broker/clock.ts";
import type { Codec } from "../../broker/codec.ts";
import { beatClockOf } from "./beat-clock.ts";
import { NodeTransport } from "../../broker/node/client/node-transport.ts";
import type { Transport } from "../../broker/transport.ts";
import { Beat, type BeatOptions } from "./beat.ts";
import {
  defineSchedule,
  type ScheduledSignature,
  type ScheduleEntry,
  type ScheduleOptions,
  type When,
} from "./schedule-definition.ts";
import { ScheduleError } from "./schedule-errors.ts";
import { nextInstant } from "./schedule-instants.ts";
import { MemoryScheduleStore, type ScheduleStore } from "./schedule-store.ts";
import { RemoteScheduleStore } from "./stores/remote-schedule-store.ts";
import { RedisTransport } from "../../broker/redis/redis-transport.ts";
import { AmqpTransport } from "../../broker/amqp/amqp-transport.ts";
import type { SealRun } from "./sealed-runs.ts";
import { RedisScheduleStore } from "./stores/redis-schedule-store.ts";
import { PostgresScheduleStore } from "./stores/postgres-schedule-store.ts";
import { InvalidArgumentError } from "../../broker/errors.ts";

/**
 * A schedule as `app.schedules.list()` shows it.
 *
 * @example
 * for (const info of await app.schedules.list()) console.log(info.name, info.lastRun, info.nextRun);
 */
export interface ScheduleInfo {
  readonly name: string;
  readonly entry: ScheduleEntry;
  /** The newest run sent or passed over (epoch ms), if any. */
  readonly lastRun: number | undefined;
  /** The next run's instant after the last run (or after the schedule was added), if it has one. */
  readonly nextRun: number | undefined;
}

/**
 * The schedules kept in the broker, changed at run time by any process connected to it.
 *
 * @example
 * await app.schedules.add("cleanup", { every: "10m" }, cleanup.s());
 * await app.schedules.remove("cleanup");
 */
export interface Schedules {
  /**
   * Add a schedule, or replace one of the same name (keeping its last run).
   *
   * @example
   * await app.schedules.add("cleanup", { every: "10m" }, cleanup.s());
   */
  add(name: string, when: When, signature: ScheduledSignature, options?: ScheduleOptions): Promise<void>;
  /** Remove a schedule; false if none had that name. */
  remove(name: string): Promise<boolean>;
  /** Every schedule with its last and next run, by name. */
  list(): Promise<ScheduleInfo[]>;
}

/** An app's periodic tasks: the store its broker keeps them in, the ones it declares, and its beats. */
export interface AppScheduling {
  readonly store: ScheduleStore;
  schedule(name: string, when: When, signature: ScheduledSignature, options?: ScheduleOptions): void;
  readonly schedules: Schedules;
  beat(options?: BeatOptions): Beat;
  /**
   * The store's once-only claim of a run's task id, for a worker to run a
   * run its store may have sent twice only once; absent when the store sends
   * each run once (the worker then claims in the result store).
   */
  readonly claimRun?: (id: string) => Promise<boolean>;
  /** Stop this app's beats. */
  close(): Promise<void>;
}

export const schedulingFor = (
  broker: Transport,
  schedules: ScheduleStore | string | undefined,
  codec: Codec,
  log: (message: string) => void,
  clock: Clock,
  seal?: SealRun,
): AppScheduling => {
  const now = clock === systemClock ? undefined : nowOf(clock);
  const owned = typeof schedules === "string" ? scheduleStoreAt(schedules, broker, now) : undefined;
  const store: ScheduleStore =
    owned ??
    (typeof schedules === "object"
      ? schedules
      : broker instanceof NodeTransport
        ? new RemoteScheduleStore(broker.client)
        : broker instanceof RedisTransport
          ? new RedisScheduleStore(broker, now)
          : broker instanceof AmqpTransport
            ? unsupported("RabbitMQ")
            : MemoryScheduleStore.of(broker, nowOf(clock)));
  const beatClock = clock === systemClock ? undefined : beatClockOf(clock);
  const declared = new Map<string, ScheduleEntry>();
  const beats: Beat[] = [];
  const check = (entry: ScheduleEntry): ScheduleEntry => {
    try {
      codec.encode(entry.args, "args");
    } catch (error) {
      throw new ScheduleError({
        schedule: entry.name,
        reason: `its arguments cannot be sent: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
    return entry;
  };
  return {
    store,
    ...(store.claimRun !== undefined ? { claimRun: store.claimRun.bind(store) } : {}),
    schedule(name, when, signature, options) {
      const entry = check(defineSchedule(name, when, signature, options));
      if (declared.has(name))
        throw new ScheduleError({
          schedule: name,
          reason: "a schedule with this name is already declared in this app",
        });
      declared.set(name, entry);
    },
    schedules: {
      async add(name, when, signature, options) {
        await store.put(check(defineSchedule(name, when, signature, options)));
      },
      remove: (name) => store.remove(name),
      async list() {
        const stored = await store.list();
        return stored
          .map((s) => ({
            name: s.entry.name,
            entry: s.entry,
            lastRun: s.lastRun,
            nextRun: nextInstant(s.entry, s.lastRun ?? s.addedAt),
          }))
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      },
    },
    beat(options) {
      const beat = new Beat(
        { store, codec, declared: () => [...declared.values()], log, ...(seal !== undefined ? { seal } : {}) },
        beatClock !== undefined && options?.clock === undefined ? { ...options, clock: beatClock } : options,
      );
      beats.push(beat);
      return beat;
    },
    async close() {
      await Promise.all(beats.map((beat) => beat.stop()));
      await owned?.close();
    },
  };
};

/** The store a `schedules` url names: PostgreSQL, publishing runs to `broker`. */
const scheduleStoreAt = (url: string, broker: Transport, now: (() => number) | undefined): ScheduleStore => {
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new InvalidArgumentError({
      argument: "schedules",
      reason: `must be a postgres:// url (schedules are otherwise kept by the broker), got ${JSON.stringify(url)}`,
    });
  return new PostgresScheduleStore(url, broker, now === undefined ? {} : { now });
};

/**
 * A broker whose processes share no schedule store: a store in this
 * process would let a beat in every process lead, and send each run once per
 * process, so every operation is refused instead.
 */
const unsupported = (broker: string): ScheduleStore => {
  const refuse = (): Promise<never> =>
    Promise.reject(
      new Error(
        `periodic tasks need schedules kept by the broker, and ${broker} keeps none: keep them in PostgreSQL (createApp({ schedules: "postgres://…" }), celerity beat --schedules postgres://…), or use a celerity node, Redis or the embedded broker`,
      ),
    );
  return {
    put: refuse,
    remove: refuse,
    list: refuse,
    changes: refuse,
    acquire: refuse,
    release: refuse,
    fire: refuse,
    close: async () => {},
  };
};
