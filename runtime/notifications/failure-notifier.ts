// Failure notifications: a subscriber to task failures that sends a notice
// through each channel, de-duplicated and rate-limited (NotificationGate).
import type { RemoteErrorInfo } from "../../dsl/result.ts";
import type { App } from "../app.ts";
import { toErrorInfo } from "../errors.ts";
import { summaryOf, type FailureNotice, type NotificationChannel } from "./failure-notice.ts";
import { NotificationGate, type NotificationLimits } from "./notification-gate.ts";

/**
 * What to notify, where, and how often.
 *
 * @example
 * notifyFailures(app, { channels: [webhookChannel({ url })], tasks: ["charge"], rate: { max: 5, perMs: 60_000 } });
 */
export interface FailureNotifierOptions extends NotificationLimits {
  readonly channels: readonly NotificationChannel[];
  /** Only failures of these tasks. Default: every task. */
  readonly tasks?: readonly string[];
  /** Where a channel that could not deliver is reported. Default: the app's log, else console.error. */
  readonly log?: (message: string) => void;
  readonly now?: () => number;
}

/**
 * A task failure, as any source (hooks in a worker, the events stream) reports it.
 *
 * @example
 * notifier.failed({ id: "6f1c…", task: "charge", error: { name: "Error", message: "card declined" }, worker: "w1" });
 */
export interface TaskFailed {
  readonly id: string;
  readonly task: string;
  readonly error: RemoteErrorInfo;
  readonly worker?: string;
  readonly at?: number;
}

/**
 * Sends failure notices through channels, at most as often as its limits
 * allow. Feed it failures with `failed(...)` (notifyFailures wires it to an
 * app); `idle()` resolves once every notice admitted so far is delivered or
 * has failed.
 *
 * @example
 * const notifier = new FailureNotifier({ channels: [emailChannel(smtp)] });
 * notifier.failed({ id, task: "charge", error: { name: "Error", message: "declined" } });
 * await notifier.idle();
 */
export class FailureNotifier {
  private readonly gate: NotificationGate;
  private readonly tasks: ReadonlySet<string> | undefined;
  private readonly log: (message: string) => void;
  private readonly now: () => number;
  private readonly pending = new Set<Promise<void>>();
  private sent = 0;
  private heard = 0;

  constructor(private readonly options: FailureNotifierOptions) {
    if (!Array.isArray(options.channels) || options.channels.length === 0)
      throw new TypeError("notifications: give at least one channel");
    this.now = options.now ?? Date.now;
    this.gate = new NotificationGate(options, this.now());
    this.tasks = options.tasks === undefined ? undefined : new Set(options.tasks);
    this.log = options.log ?? ((message) => console.error(message));
  }

  /** Notices handed to the channels so far. */
  get notified(): number {
    return this.sent;
  }

  /** Failures reported to it so far (of the tasks it watches), notified or held back. */
  get received(): number {
    return this.heard;
  }

  /** Report a failure: notified now, or counted and told with the next notice of its kind. */
  failed(failure: TaskFailed): void {
    if (this.tasks !== undefined && !this.tasks.has(failure.task)) return;
    this.heard++;
    const at = failure.at ?? this.now();
    const suppressed = this.gate.admit(
      `${failure.task}\u0000${failure.error.name}\u0000${failure.error.message}`,
      this.now(),
    );
    if (suppressed === undefined) return;
    const notice: FailureNotice = {
      id: failure.id,
      task: failure.task,
      error: failure.error,
      at,
      suppressed,
      ...(failure.worker !== undefined ? { worker: failure.worker } : {}),
    };
    this.sent++;
    for (const channel of this.options.channels) {
      const delivery = channel.send(notice).then(
        () => undefined,
        (error: unknown) =>
          this.log(
            `notifications: ${channel.name} could not deliver the notice of ${summaryOf(notice)} (${notice.id}): ${error instanceof Error ? error.message : String(error)}`,
          ),
      );
      this.pending.add(delivery);
      void delivery.finally(() => this.pending.delete(delivery));
    }
  }

  /** Resolves once every notice admitted so far is delivered (or has failed, and been logged). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Wait for deliveries under way, then close the channels. */
  async close(): Promise<void> {
    await this.idle();
    for (const channel of this.options.channels) await channel.close?.();
  }
}

/**
 * Notify failures of `app`'s tasks, as its workers in this process record
 * them (the `taskFailure` hook): each worker process that calls this sends
 * its own notices, each de-duplicated and rate-limited on its own. Returns
 * the notifier; close it before the app to stop and wait for deliveries.
 *
 * @example
 * const notifier = notifyFailures(app, {
 *   channels: [emailChannel({ smtp: "smtp://127.0.0.1:2525", from: "celerity@example.com", to: "ops@example.com" })],
 *   dedupeWindowMs: 10 * 60_000,
 *   rate: { max: 10, perMs: 60 * 60_000 },
 * });
 */
export const notifyFailures = (app: App, options: FailureNotifierOptions): FailureNotifier => {
  const notifier = new FailureNotifier(options);
  app.on("taskFailure", ({ id, task, error, worker }) => {
    notifier.failed({
      id,
      task,
      worker,
      error: toErrorInfo(error ?? new Error("the task's result could not be recorded")),
    });
  });
  return notifier;
};
