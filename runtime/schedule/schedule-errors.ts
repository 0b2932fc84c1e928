// The errors of periodic tasks: a schedule that cannot be kept as given (ScheduleError),
// and a beat whose lease was taken over (LeaseLostError).
import { Data } from "effect";

/**
 * A schedule that cannot be kept as given: a bad name, interval, cron
 * expression, time zone, option or argument. Nothing is stored or sent.
 *
 * @example
 * app.schedule("report", { cron: "0 3 * *" }, report.s()); // throws ScheduleError: 'report': cron ...
 */
export class ScheduleError extends Data.TaggedError("ScheduleError")<{
  readonly schedule: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `schedule '${this.schedule}': ${this.reason}`;
  }
}

/**
 * The beat's lease was taken over (it expired, or another beat holds a newer
 * fencing token): the runs it tried to send were refused and not recorded.
 * The beat stops sending and tries to lead again.
 *
 * @example
 * await store.fire(holder, staleToken, runs).catch((error) => error instanceof LeaseLostError); // true: nothing recorded or sent
 */
export class LeaseLostError extends Data.TaggedError("LeaseLostError")<{
  readonly holder: string;
  readonly token: number;
  readonly current: number;
}> {
  override get message(): string {
    return `beat '${this.holder}' no longer leads: its lease token ${this.token} is fenced off (current token ${this.current})`;
  }
}

/**
 * The store keeping the schedules (PostgreSQL) could not be reached, or the
 * connection broke before its answer: the change may or may not have been
 * made. A beat tries again at its next tick, reading the table afresh.
 *
 * @example
 * await app.schedules.list().catch((error) => error instanceof ScheduleStoreConnectionLostError); // PostgreSQL is down
 */
export class ScheduleStoreConnectionLostError extends Data.TaggedError("ConnectionLostError")<{
  readonly store: string;
  readonly operation: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `lost the connection to ${this.store} keeping the schedules during beat.${this.operation} (it may or may not have been applied): ${this.reason}`;
  }
}
