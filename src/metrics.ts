/**
 * celerity/metrics: an app's Prometheus metrics (prom-client). Tasks by name
 * and state, the run time of successful runs, workers online and busy, the
 * event stream's lag, each queue's depth. Served by a standard fetch handler
 * to mount anywhere, or on a port of its own; or collected onto a registry
 * an application already serves. An entry of its own, so an app that does
 * not report metrics never loads prom-client.
 *
 * @example
 * import { createApp } from "celerity";
 * import { createMetricsHandler, serveMetrics } from "celerity/metrics";
 *
 * const app = createApp({ broker: "celerity://127.0.0.1:5690" });
 * const server = await serveMetrics(createMetricsHandler(app), { port: 9808 });
 * console.log(`Prometheus scrapes ${server.url}`);
 *
 * @module
 */
export { collectMetrics, type AppMetrics, type MetricsOptions } from "../runtime/metrics/app-metrics.ts";
export {
  createMetricsHandler,
  type FetchHandler,
  type MetricsHandlerOptions,
} from "../runtime/metrics/metrics-handler.ts";
export { serveMetrics, type MetricsServer, type ServeMetricsOptions } from "../runtime/metrics/metrics-server.ts";
export { MetricsOptionError } from "../runtime/metrics/metrics-errors.ts";
export { METRIC_NAMES, DEFAULT_RUNTIME_BUCKETS } from "../runtime/metrics/metric-set.ts";
