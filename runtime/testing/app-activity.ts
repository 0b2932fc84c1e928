/**
 * What a test app is still doing at the current virtual time: publishes
 * awaiting the broker's confirm, messages ready in a consumed queue, tasks
 * running or held for a slot, timers already due. Nothing of these left
 * means settled; what only waits for the clock (a countdown, a backoff, a
 * token) does not count.
 */

/** "idle": nothing to do now; "running": only handlers still running; "busy": messages or timers to handle. */
export type ActivityState = "idle" | "running" | "busy";

import { QueueNotFoundError } from "../../broker/errors.ts";
import type { Transport } from "../../broker/transport.ts";
import type { Worker } from "../worker/worker.ts";
import type { RecordingTransport } from "./recording-transport.ts";
import type { TaskStubs } from "./task-stubs.ts";
import type { VirtualClock } from "./virtual-clock.ts";

export class AppActivity {
  readonly workers: Worker[] = [];
  /** Queues consumed by the workers made through the test app. */
  readonly queues = new Set<string>();

  constructor(
    private readonly broker: RecordingTransport,
    private readonly clock: VirtualClock,
    private readonly stubs: TaskStubs,
  ) {}

  /** What is left to do at the current time (a quick check, made every turn while draining). */
  async state(): Promise<ActivityState> {
    if (this.broker.inFlight > 0) return "busy";
    const due = this.clock.nextAt();
    if (due !== undefined && due <= this.clock.now()) return "busy";
    let running = false;
    for (const worker of this.workers) {
      const stats = worker.stats();
      if (stats.waiting > 0) return "busy";
      if (stats.running > 0) running = true;
    }
    for (const queue of this.queues) if ((await readyIn(this.broker.inner, queue)) > 0) return "busy";
    return running ? "running" : "idle";
  }

  /** What is still busy, one phrase each, for an error that must name it. */
  async describe(): Promise<string[]> {
    const busy: string[] = [];
    const realNow = Date.now();
    for (const [id, { task, since }] of this.stubs.running)
      busy.push(`task '${task}' (${id}) running for ${realNow - since} ms`);
    for (const worker of this.workers) {
      const { running, waiting } = worker.stats();
      if (running > 0 || waiting > 0)
        busy.push(`worker ${worker.name}: ${running} running, ${waiting} held for a free slot`);
    }
    for (const queue of this.queues) {
      const ready = await readyIn(this.broker.inner, queue);
      if (ready > 0) busy.push(`${ready} message(s) ready in queue '${queue}'`);
    }
    if (this.broker.inFlight > 0) busy.push(`${this.broker.inFlight} publish(es) awaiting the broker's confirm`);
    const due = this.clock.nextAt();
    if (due !== undefined && due <= this.clock.now()) busy.push("timers due now");
    return busy.length > 0 ? busy : ["(nothing visible: work keeps starting)"];
  }
}

const readyIn = async (broker: Transport, queue: string): Promise<number> => {
  try {
    return (await broker.stats(queue)).ready;
  } catch (error) {
    if (error instanceof QueueNotFoundError) return 0; // not declared yet: nothing was sent to it
    throw error;
  }
};
