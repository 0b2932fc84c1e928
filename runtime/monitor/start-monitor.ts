/**
 * A running monitor: an app's event stream folded into a MonitorState, and
 * the dashboard, live updates and HTTP API served on a port. What
 * `celerity monitor` runs; closing it ends the server, the live streams and
 * the subscription, in that order.
 */
import { Data } from "effect";
import type { App } from "../app.ts";
import type { EventSubscription } from "../events/event-subscription.ts";
import { serveFetch, type FetchServer } from "./fetch-server.ts";
import type { HttpAuth } from "./http-auth.ts";
import { requiresAuth } from "./http-auth.ts";
import { createMonitorHandler } from "./monitor-handler.ts";
import { MonitorState } from "./monitor-state.ts";

/**
 * Where and how a monitor serves.
 *
 * @example
 * const monitor = await startMonitor(app, { port: 5555, host: "0.0.0.0", auth: { token: "s3cret" } });
 */
export interface MonitorOptions {
  /** Default 5555; 0 lets the system choose. */
  readonly port?: number;
  /** Default 127.0.0.1. Any other address requires `auth`. */
  readonly host?: string;
  readonly auth?: HttpAuth;
  /** Most tasks remembered (least recently changed forgotten first). Default 100,000. */
  readonly maxTasks?: number;
  /** Serves `/metrics` when given. */
  readonly metrics?: (request: Request) => Promise<Response>;
}

/**
 * A monitor that is serving.
 *
 * @example
 * console.log(`dashboard at ${monitor.url}`);
 * await monitor.close();
 */
export interface RunningMonitor {
  readonly url: string;
  readonly state: MonitorState;
  close(): Promise<void>;
}

/** Addresses only this machine can reach. */
export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host);

/**
 * Thrown before anything starts when the monitor would listen beyond loopback without credentials.
 *
 * @example
 * await startMonitor(app, { host: "0.0.0.0" }); // throws MonitorExposedError: give auth, or listen on 127.0.0.1
 */
export class MonitorExposedError extends Data.TaggedError("MonitorExposedError")<{ readonly host: string }> {
  override get message(): string {
    return `refusing to serve on ${this.host} without credentials: anyone who can reach it could purge queues and revoke tasks; give a token or basic auth (celerity monitor --auth-token-file f), or listen on 127.0.0.1`;
  }
}

/**
 * Follow `app`'s event stream and serve the dashboard, its live updates and
 * the HTTP API (what `celerity monitor` runs); resolves once listening.
 * Refuses (MonitorExposedError) to listen beyond loopback without `auth`.
 *
 * @example
 * const app = createApp({ broker: "celerity://127.0.0.1:5690" });
 * const monitor = await startMonitor(app, { port: 5555 });
 * console.log(`dashboard at ${monitor.url}`);
 */
export const startMonitor = async (app: App, options: MonitorOptions = {}): Promise<RunningMonitor> => {
  const host = options.host ?? "127.0.0.1";
  if (!isLoopback(host) && !requiresAuth(options.auth)) throw new MonitorExposedError({ host });
  const state = new MonitorState(options.maxTasks !== undefined ? { maxTasks: options.maxTasks } : {});
  const subscription: EventSubscription = await app.events.subscribe((event) => state.apply(event));
  let server: FetchServer | undefined;
  const monitor = createMonitorHandler(app, state, {
    ...(options.auth !== undefined ? { auth: options.auth } : {}),
    ...(options.metrics !== undefined ? { metrics: options.metrics } : {}),
  });
  try {
    server = await serveFetch(monitor.handle, { host, port: options.port ?? 5555 });
  } catch (error) {
    await subscription.close();
    throw error;
  }
  const running = server;
  return {
    url: running.url,
    state,
    close: async () => {
      monitor.live.close();
      await running.close();
      await subscription.close();
    },
  };
};
