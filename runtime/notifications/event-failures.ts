// Failure notifications from the events stream: one process (a monitor, an
// ops service) subscribes to every worker's `task-failed` events and
// notifies them, so de-duplication and the rate limit hold for the whole
// cluster, not per worker.
import type { RemoteErrorInfo } from "../../dsl/result.ts";
import type { App } from "../app.ts";
import type { TaskFailedEvent } from "../events/event-types.ts";
import { FailureNotifier, type FailureNotifierOptions } from "./failure-notifier.ts";

/**
 * A notifier subscribed to the events stream.
 *
 * @example
 * const notifications = await notifyFailuresFromEvents(app, { channels: [webhookChannel({ url })] });
 * await notifications.close();
 */
export interface EventFailureNotifications {
  readonly notifier: FailureNotifier;
  /** Stop listening, wait for deliveries under way, close the channels. */
  close(): Promise<void>;
}

/**
 * The error of a task-failed event: its `exception` reads `Name("message")` (a JSON string), and its traceback.
 *
 * @example
 * app.events.subscribe((event) => { if (event.type === "task-failed") console.log(errorOfEvent(event).message); });
 */
export const errorOfEvent = (event: TaskFailedEvent): RemoteErrorInfo => {
  const match = /^([^(]*)\((".*")\)$/s.exec(event.exception);
  let name = "Error";
  let message = event.exception;
  if (match !== null) {
    try {
      message = JSON.parse(match[2]) as string;
      name = match[1] || "Error";
    } catch {
      // Not the shape we send: keep the whole text as the message.
    }
  }
  return { name, message, ...(event.traceback !== "" ? { stack: event.traceback } : {}) };
};

/**
 * Notify the failures that every worker reports on the events stream
 * (workers started with `events: true`). Run it in one process to have one
 * set of limits for the cluster. `tasks` filters on the subscription.
 *
 * @example
 * const notifications = await notifyFailuresFromEvents(app, {
 *   channels: [emailChannel({ smtp: "smtp://127.0.0.1:2525", from: "celerity@example.com", to: "ops@example.com" })],
 *   rate: { max: 10, perMs: 60 * 60_000 },
 * });
 */
export const notifyFailuresFromEvents = async (
  app: App,
  options: FailureNotifierOptions,
): Promise<EventFailureNotifications> => {
  const notifier = new FailureNotifier(options);
  const subscription = await app.events.subscribe(
    (event) => {
      if (event.type !== "task-failed") return;
      notifier.failed({
        id: event.uuid,
        task: event.name,
        error: errorOfEvent(event),
        worker: event.hostname,
        at: Math.round(event.timestamp * 1_000),
      });
    },
    { types: ["task-failed"], ...(options.tasks !== undefined ? { tasks: options.tasks } : {}) },
  );
  return {
    notifier,
    async close() {
      await subscription.close();
      await notifier.close();
    },
  };
};
