/**
 * The errors of Prometheus metrics: an option of `collectMetrics` or
 * `createMetricsHandler` that cannot be used as given.
 */
import { Data } from "effect";

/**
 * A metrics option cannot be used as given; nothing was registered or subscribed.
 *
 * @example
 * await collectMetrics(app, { feed: "logs" as "events" }); // throws MetricsOptionError: metrics option 'feed': ...
 */
export class MetricsOptionError extends Data.TaggedError("MetricsOptionError")<{
  readonly option: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `metrics option '${this.option}': ${this.reason}`;
  }
}
