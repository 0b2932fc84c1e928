// What a failure notification tells (FailureNotice), the channel it goes through
// (NotificationChannel), and its summary line and text as channels write them.
import type { RemoteErrorInfo } from "../../dsl/result.ts";

/**
 * A task failed for good: what a failure notification tells. `suppressed`
 * counts the failures like it (same task and error) that were not notified
 * since the last notification about them, held back by de-duplication or
 * the rate limit.
 *
 * @example
 * const notice: FailureNotice = { id, task: "charge", error: { name: "Error", message: "card declined" }, at: Date.now(), suppressed: 0 };
 */
export interface FailureNotice {
  readonly id: string;
  readonly task: string;
  readonly error: RemoteErrorInfo;
  /** The worker that ran it, when known. */
  readonly worker?: string;
  /** Epoch ms of the failure. */
  readonly at: number;
  readonly suppressed: number;
}

/**
 * Where failure notifications go: e-mail (`emailChannel`), a webhook
 * (`webhookChannel`), or a channel of your own. `send` resolves once
 * delivered; a rejection is logged and the notice is not retried.
 *
 * @example
 * const console: NotificationChannel = { name: "console", send: async (notice) => console.error(notice.task, notice.error.message) };
 */
export interface NotificationChannel {
  readonly name: string;
  send(notice: FailureNotice): Promise<void>;
  close?(): Promise<void>;
}

/** One line that says what failed, for subjects and logs. */
export const summaryOf = (notice: FailureNotice): string =>
  `task '${notice.task}' failed: ${notice.error.name}: ${notice.error.message.split("\n")[0].slice(0, 200)}`;

/** The notice as text: what failed, where, when, the stack, and how many like it were held back. */
export const textOf = (notice: FailureNotice): string =>
  [
    summaryOf(notice),
    "",
    `task id: ${notice.id}`,
    ...(notice.worker !== undefined ? [`worker: ${notice.worker}`] : []),
    `at: ${new Date(notice.at).toISOString()}`,
    ...(notice.suppressed > 0
      ? [`${notice.suppressed} more failures like this one were not notified since the last notice about them`]
      : []),
    "",
    notice.error.stack ?? `${notice.error.name}: ${notice.error.message}`,
  ].join("\n");
