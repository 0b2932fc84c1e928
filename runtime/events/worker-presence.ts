// A worker's presence in the event stream: worker-online, a heartbeat every few seconds
// with its load, worker-offline.
import { loadavg } from "node:os";
import { readFileSync } from "node:fs";
import type { EventDispatcher } from "./event-dispatcher.ts";

/** Seconds between a worker's heartbeats (Celery's default). A monitor counts a worker gone after missing a few. */
export const HEARTBEAT_SECONDS = 2;

const VERSION = ((): string => {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string })
      .version;
  } catch {
    return "unknown";
  }
})();

/** What a heartbeat reports of its worker. */
export interface WorkerLoad {
  readonly active: number;
  readonly processed: number;
}

/**
 * A worker's presence in the event stream: worker-online when it starts
 * (or its events are enabled), a worker-heartbeat every `freq` seconds with
 * what it is running and has processed, worker-offline when it stops.
 */
export class WorkerPresence {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly dispatcher: EventDispatcher,
    private readonly hostname: string,
    private readonly load: () => WorkerLoad,
    private readonly freq = HEARTBEAT_SECONDS,
  ) {}

  online(): void {
    this.dispatcher.send(this.hostname, { type: "worker-online", ...this.identity() });
    this.timer = setInterval(() => this.beat(), this.freq * 1000);
    this.timer.unref();
  }

  /** Send a heartbeat now (also sent every `freq` seconds while online). */
  beat(): void {
    const { active, processed } = this.load();
    const [one, five, fifteen] = loadavg();
    this.dispatcher.send(this.hostname, {
      type: "worker-heartbeat",
      ...this.identity(),
      active,
      processed,
      loadavg: [one, five, fifteen],
    });
  }

  offline(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.dispatcher.send(this.hostname, { type: "worker-offline", ...this.identity() });
    this.dispatcher.flush();
  }

  private identity() {
    return { freq: this.freq, sw_ident: "celerity", sw_ver: VERSION, sw_sys: process.platform };
  }
}
