// Where an app's options (or the environment) point it: the transport for each broker url
// scheme, and the result store that goes with it unless `results` names another.
//
// - broker `celerity://host:port`: a broker node; results on the node.
// - broker `redis://host:port/db` (or `rediss://`): the Redis transport; results in the same Redis.
// - broker `amqp://user:password@host:5672/vhost` (or `amqps://`): RabbitMQ; results in memory unless
//   `results` names a store every process shares (RabbitMQ keeps messages, not results).
// - no broker: an embedded broker in this process; results in memory.
// - results `redis://…`, `postgres://…` (or `postgresql://`), `memory`: that store, with any broker.
import { nowOf, systemClock, type Clock } from "../broker/clock.ts";
import { EmbeddedBroker } from "../broker/embedded/embedded-broker.ts";
import { DetachedTransport } from "./pool/detached-transport.ts";
import { POOL_CHILD_ENV } from "./pool/pool-protocol.ts";
import { InvalidArgumentError } from "../broker/errors.ts";
import { connectAmqp } from "../broker/amqp/connect-amqp.ts";
import { NodeTransport } from "../broker/node/client/node-transport.ts";
import { RedisTransport } from "../broker/redis/redis-transport.ts";
import type { Transport } from "../broker/transport.ts";
import { PostgresResultStore } from "./results/postgres-result-store.ts";
import { RedisResultStore } from "./results/redis-result-store.ts";
import { RemoteResultStore } from "./results/remote-result-store.ts";
import { MemoryResultStore, type ResultStore } from "./results/result-store.ts";

/** What `connect` is given: the app's broker and results, as objects or urls, and its token, log and clock. */
export interface ConnectOptions {
  readonly broker?: Transport | string;
  readonly results?: ResultStore | string;
  readonly token?: string;
  /** The app runs in signed mode (a broker node without a token then warns). */
  readonly signed?: boolean;
  readonly log: (message: string) => void;
  /** The clock of the in-process broker and result store (a virtual one in tests). Default the system's. */
  readonly clock?: Clock;
}

export interface Connected {
  readonly broker: Transport;
  readonly results: ResultStore;
}

export const BROKER_SCHEMES = ["celerity://", "redis://", "rediss://", "amqp://", "amqps://"] as const;
export const RESULT_SCHEMES = ["redis://", "rediss://", "postgres://", "postgresql://", "memory"] as const;

/** The transport and result store the options ask for: options first, then CELERITY_BROKER_URL and CELERITY_RESULTS_URL. */
export const connect = (options: ConnectOptions): Connected => {
  const target = options.broker ?? process.env.CELERITY_BROKER_URL;
  const results = options.results ?? process.env.CELERITY_RESULTS_URL;
  const clock = options.clock ?? systemClock;
  const explicit =
    results === undefined ? undefined : typeof results === "string" ? openResultStore(results, clock) : results;
  if (target === undefined || typeof target !== "string") {
    // In a pool's thread or child, an embedded broker of its own would swallow what its tasks send.
    const broker = target ?? (process.env[POOL_CHILD_ENV] ? new DetachedTransport() : new EmbeddedBroker({ clock }));
    return { broker, results: explicit ?? new MemoryResultStore({ now: nowOf(clock) }) };
  }
  const scheme = schemeOf(target);
  switch (scheme) {
    case "celerity": {
      const token = options.token ?? process.env.CELERITY_TOKEN;
      const transport = NodeTransport.create(target, {
        ...(token !== undefined ? { token } : {}),
        ...(options.signed === true ? { signed: true } : {}),
        name: `app@${process.pid}`,
        log: options.log,
      });
      return { broker: transport, results: explicit ?? new RemoteResultStore(transport.client) };
    }
    case "redis":
    case "rediss": {
      const transport = RedisTransport.create(target, { log: options.log });
      return {
        broker: transport,
        results: explicit ?? new RedisResultStore(target, { connection: transport.redis, log: options.log }),
      };
    }
    case "amqp":
    case "amqps":
      return {
        broker: connectAmqp(target, { log: options.log }),
        results: explicit ?? new MemoryResultStore({ now: nowOf(clock) }),
      };
    default:
      throw new InvalidArgumentError({
        argument: "broker url",
        reason: `${JSON.stringify(target)} has no scheme celerity knows; use one of ${BROKER_SCHEMES.join(", ")}`,
      });
  }
};

/** The result store a url names. */
export const openResultStore = (url: string, clock: Clock = systemClock): ResultStore => {
  if (url === "memory") return new MemoryResultStore({ now: nowOf(clock) });
  switch (schemeOf(url)) {
    case "redis":
    case "rediss":
      return new RedisResultStore(url);
    case "postgres":
    case "postgresql":
      return new PostgresResultStore(url);
    default:
      throw new InvalidArgumentError({
        argument: "results url",
        reason: `${JSON.stringify(url)} names no result store celerity knows; use one of ${RESULT_SCHEMES.join(", ")}`,
      });
  }
};

const schemeOf = (url: string): string => {
  const colon = url.indexOf("://");
  return colon <= 0 ? "" : url.slice(0, colon).toLowerCase();
};
