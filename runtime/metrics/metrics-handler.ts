/**
 * `createMetricsHandler`: a standard fetch handler, `(Request) =>
 * Promise<Response>`, serving an app's metrics in Prometheus's text
 * exposition format at one path (`/metrics` unless told), to mount in any
 * server that speaks fetch (Hono, Next.js, Bun, Deno, the monitor) or to
 * serve with `serveMetrics`.
 */
import type { App } from "../app.ts";
import { type AppMetrics, collectMetrics, type MetricsOptions } from "./app-metrics.ts";
import { MetricsOptionError } from "./metrics-errors.ts";

/**
 * The options of `createMetricsHandler`: where it answers, and, given an app, how its metrics are collected.
 *
 * @example
 * const handler = createMetricsHandler(app, { path: "/internal/metrics", feed: "workers" });
 */
export interface MetricsHandlerOptions extends MetricsOptions {
  /** The path the metrics are served at; any other is a 404. Default `/metrics`. */
  readonly path?: string;
}

/**
 * A fetch handler.
 *
 * @example
 * const handler: FetchHandler = createMetricsHandler(app);
 * const response = await handler(new Request("http://localhost/metrics"));
 */
export type FetchHandler = (request: Request) => Promise<Response>;

const ALLOWED = "GET, HEAD";

const plain = (status: number, text: string, headers: Record<string, string> = {}): Response =>
  new Response(`${text}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });

const isAppMetrics = (value: App | AppMetrics): value is AppMetrics =>
  "registry" in value && typeof (value as AppMetrics).close === "function" && !("worker" in value);

/**
 * Serve the metrics of `source` (an app, whose metrics it starts collecting
 * now, with `options`; or metrics already collected with `collectMetrics`)
 * at `options.path`: GET and HEAD answer the text exposition format, any
 * other method a 405 with `Allow`, any other path a 404 saying where the
 * metrics are. Collecting from an app ends when the app closes.
 *
 * @example
 * import { createMetricsHandler } from "celerity/metrics";
 * const metrics = createMetricsHandler(app);
 * // Hono: server.get("/metrics", (c) => metrics(c.req.raw));
 * const response = await metrics(new Request("http://localhost/metrics"));
 * console.log(response.headers.get("content-type"), await response.text());
 */
export const createMetricsHandler = (source: App | AppMetrics, options: MetricsHandlerOptions = {}): FetchHandler => {
  const path = options.path ?? "/metrics";
  if (typeof path !== "string" || !path.startsWith("/"))
    throw new MetricsOptionError({ option: "path", reason: `${JSON.stringify(path)} is not a path starting with '/'` });
  const collecting: Promise<AppMetrics> = isAppMetrics(source)
    ? Promise.resolve(source)
    : collectMetrics(source, options);
  // A collection that failed is told to each request; it must not also surface as an unhandled rejection.
  collecting.catch(() => {});
  return async (request) => {
    const { pathname } = new URL(request.url);
    if (pathname !== path) return plain(404, `no such path: ${pathname}; the metrics are served at ${path}`);
    if (request.method !== "GET" && request.method !== "HEAD")
      return plain(405, `method ${request.method} is not allowed on ${path}; use GET`, { allow: ALLOWED });
    let metrics: AppMetrics;
    try {
      metrics = await collecting;
    } catch (error) {
      return plain(503, `metrics are unavailable: ${error instanceof Error ? error.message : String(error)}`);
    }
    let text: string;
    try {
      text = await metrics.registry.metrics();
    } catch (error) {
      return plain(500, `metrics could not be read: ${error instanceof Error ? error.message : String(error)}`);
    }
    return new Response(request.method === "HEAD" ? null : text, {
      status: 200,
      headers: { "content-type": metrics.registry.contentType },
    });
  };
};
