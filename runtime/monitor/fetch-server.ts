/**
 * Serving a fetch handler, `(Request) => Promise<Response>`, on Node's HTTP
 * server: each request becomes a `Request` (its body streamed), each
 * `Response` is written back with its body streamed too, so a long-lived
 * answer such as Server-Sent Events flows as it is produced and ends when
 * the client goes away.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";

/**
 * A running server.
 *
 * @example
 * const server = await serveFetch(handler, { host: "127.0.0.1", port: 0 });
 * console.log(server.url);
 * await server.close();
 */
export interface FetchServer {
  /** `http://host:port`, with the port the system gave when asked for 0. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const requestOf = (incoming: IncomingMessage, origin: string, signal: AbortSignal): Request => {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming.headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  const method = incoming.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  return new Request(new URL(incoming.url ?? "/", origin), {
    method,
    headers,
    signal,
    ...(hasBody ? { body: Readable.toWeb(incoming) as ReadableStream<Uint8Array>, duplex: "half" } : {}),
  } as RequestInit);
};

const writeResponse = async (response: Response, outgoing: ServerResponse, signal: AbortSignal): Promise<void> => {
  outgoing.statusCode = response.status;
  response.headers.forEach((value, name) => outgoing.setHeader(name, value));
  if (response.body === null) {
    outgoing.end();
    return;
  }
  outgoing.flushHeaders();
  const reader = response.body.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", cancel, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      outgoing.write(value);
    }
    outgoing.end();
  } finally {
    signal.removeEventListener("abort", cancel);
  }
};

/**
 * Listen on `host:port` and answer every request with `handler`; resolves
 * once listening. A handler that throws answers 500.
 *
 * @example
 * const server = await serveFetch(createHttpHandler(app), { host: "127.0.0.1", port: 5555 });
 */
export const serveFetch = (
  handler: (request: Request) => Promise<Response>,
  { host, port }: { readonly host: string; readonly port: number },
): Promise<FetchServer> =>
  new Promise((resolve, reject) => {
    const server: Server = createServer((incoming, outgoing) => {
      const aborted = new AbortController();
      outgoing.once("close", () => aborted.abort());
      const origin = `http://${incoming.headers.host ?? `${host}:${port}`}`;
      void (async () => {
        try {
          await writeResponse(await handler(requestOf(incoming, origin, aborted.signal)), outgoing, aborted.signal);
        } catch (error) {
          if (outgoing.headersSent) outgoing.destroy();
          else {
            outgoing.statusCode = 500;
            outgoing.setHeader("content-type", "application/json; charset=utf-8");
            outgoing.end(
              JSON.stringify({ error: "internal", message: error instanceof Error ? error.message : String(error) }),
            );
          }
        }
      })();
    });
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address = server.address() as AddressInfo;
      const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${shownHost}:${address.port}`,
        port: address.port,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
