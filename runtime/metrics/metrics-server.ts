/**
 * `serveMetrics`: a fetch handler (`createMetricsHandler`'s) served on a
 * port of its own with node's HTTP server, for a process that has no web
 * server to mount it in (`celerity worker --metrics-port`). Requests carry
 * no body worth reading here: only the method, path and headers go through.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { FetchHandler } from "./metrics-handler.ts";

/**
 * A running metrics server.
 *
 * @example
 * const server = await serveMetrics(createMetricsHandler(app), { port: 9808 });
 * console.log(`scrape ${server.url}`);
 * await server.close();
 */
export interface MetricsServer {
  /** Where Prometheus scrapes it, e.g. `http://127.0.0.1:9808/metrics`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Where `serveMetrics` listens.
 *
 * @example
 * const where: ServeMetricsOptions = { port: 9808, host: "0.0.0.0" };
 */
export interface ServeMetricsOptions {
  /** 0 picks a free port. */
  readonly port: number;
  /** Default 127.0.0.1 (loopback): name an interface, or 0.0.0.0, to be scraped from elsewhere. */
  readonly host?: string;
  /** The path in `url`; the handler decides what it serves. Default `/metrics`. */
  readonly path?: string;
}

const answer = async (handler: FetchHandler, base: string, req: IncomingMessage, res: ServerResponse) => {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === "string") headers.set(name, value);
    else if (Array.isArray(value)) for (const item of value) headers.append(name, item);
  }
  const response = await handler(new Request(new URL(req.url ?? "/", base), { method: req.method, headers }));
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(req.method === "HEAD" ? undefined : Buffer.from(await response.arrayBuffer()));
};

/**
 * Serve `handler` on `options.port`; resolves once listening.
 *
 * @example
 * import { createMetricsHandler, serveMetrics } from "celerity/metrics";
 * const server = await serveMetrics(createMetricsHandler(app, { feed: "workers" }), { port: 9808 });
 */
export const serveMetrics = (handler: FetchHandler, options: ServeMetricsOptions): Promise<MetricsServer> => {
  const host = options.host ?? "127.0.0.1";
  const base = `http://${host.includes(":") ? `[${host}]` : host}`;
  const server = createServer((req, res) => {
    answer(handler, base, req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end(`metrics could not be served: ${error instanceof Error ? error.message : String(error)}\n`);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `${base}:${port}${options.path ?? "/metrics"}`,
        port,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((error) => (error ? fail(error) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
};
