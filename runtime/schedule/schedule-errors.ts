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
