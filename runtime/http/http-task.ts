// HTTP tasks, Celery's webhooks: a task that calls a URL, retrying on
// failures worth retrying, within a timeout, signed with HMAC, and whose
// result is the response.
import { Data } from "effect";
import type { App } from "../app.ts";
import type { Task, TaskContext, RetryPolicy } from "../task.ts";
import { SIGNATURE_HEADER, signHttpBody } from "./http-signature.ts";

/**
 * One HTTP call: the task's argument.
 *
 * @example
 * await http.delay({ url: "https://example.com/hooks/order", method: "POST", body: { order: 42 } });
 */
export interface HttpRequest {
  readonly url: string;
  /** Default "POST" with a body, else "GET". */
  readonly method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD";
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent as JSON (content-type application/json). */
  readonly body?: unknown;
}

/**
 * What an HTTP task stores as its result: the status, the response headers
 * (lower-cased names) and the body, parsed if it is JSON, else text.
 *
 * @example
 * const { status, body } = await (await http.delay({ url })).get();
 */
export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
}

/**
 * How an HTTP task is made: its name, signing secret, timeout, retries.
 *
 * @example
 * const http = httpTask(app, { secret: process.env.HOOK_SECRET, timeout: 10_000, retry: { max: 5, delay: 1_000, backoff: 2 } });
 */
export interface HttpTaskOptions {
  /** Default "http.request". */
  readonly name?: string;
  /** Sign every request with HMAC-SHA256 under this secret (header x-celerity-signature). Default: unsigned. */
  readonly secret?: string | Uint8Array;
  /** Abort a call that has not answered within this many ms. Default 30,000. */
  readonly timeout?: number;
  /**
   * Retries on a network error, a timeout, 408, 429 and 5xx (other statuses
   * fail at once). Default { max: 3, delay: 1_000, backoff: 2, jitter: true }.
   */
  readonly retry?: Omit<RetryPolicy, "retryOn">;
  /** The largest response body kept, in bytes. Default 1 MiB. */
  readonly maxResponseBytes?: number;
  /** Other defaults of the task (queue, rate limit, ...). */
  readonly queue?: string;
}

/**
 * An HTTP call failed; `retryable` says whether the HTTP task retried (or would have).
 *
 * @example
 * await (await http.delay({ url })).get().catch((error) => console.log(error.remote.name)); // "HttpTaskError"
 */
export class HttpTaskError extends Data.TaggedError("HttpTaskError")<{
  readonly url: string;
  readonly reason: string;
  readonly status?: number;
  readonly retryable: boolean;
}> {
  override get message(): string {
    return `HTTP call to ${this.url} failed: ${this.reason}${this.retryable ? "" : " (not retried)"}`;
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
const DEFAULT_RETRY = { max: 3, delay: 1_000, backoff: 2, jitter: true } as const;
const METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]);
const RETRYABLE_STATUS = (status: number) => status === 408 || status === 429 || status >= 500;

const checkRequest = (request: HttpRequest): { url: URL; method: string } => {
  const bad = (reason: string, url = String((request as { url?: unknown } | null)?.url)) =>
    new HttpTaskError({ url, reason, retryable: false });
  if (typeof request !== "object" || request === null)
    throw bad("the argument must be { url, method?, headers?, body? }");
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw bad(`'${String(request.url)}' is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw bad(`only http: and https: URLs can be called, not ${url.protocol}`);
  const method = (request.method ?? (request.body === undefined ? "GET" : "POST")).toUpperCase();
  if (!METHODS.has(method)) throw bad(`unknown method '${request.method}'; one of ${[...METHODS].join(", ")}`);
  if ((method === "GET" || method === "HEAD") && request.body !== undefined)
    throw bad(`a ${method} request cannot have a body`);
  return { url, method };
};

/** Read at most `max` bytes of the body; a larger one is an error, not a truncated result. */
const readBody = async (response: Response, url: string, max: number): Promise<string> => {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > max)
    throw new HttpTaskError({
      url,
      status: response.status,
      reason: `response body of ${declared} bytes exceeds maxResponseBytes ${max}`,
      retryable: false,
    });
  if (response.body === null) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > max)
      throw new HttpTaskError({
        url,
        status: response.status,
        reason: `response body exceeds maxResponseBytes ${max}`,
        retryable: false,
      });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
};

/** Seconds (or an HTTP date) of a Retry-After header, as ms; undefined if absent or unreadable. */
const retryAfterMs = (value: string | null, now: number): number | undefined => {
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1_000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
};

/**
 * Register an HTTP task on `app` (in every process that sends or runs it,
 * like any task): it calls the URL of its argument, signs the request if a
 * secret is given, gives up on a call after `timeout`, retries network
 * errors, timeouts, 408, 429 and 5xx with backoff (honouring Retry-After),
 * and stores the response (status, headers, body) as its result. Other
 * statuses fail the task at once with an HttpTaskError.
 *
 * @example
 * const http = httpTask(app, { secret: process.env.HOOK_SECRET, timeout: 5_000 });
 * const r = await http.delay({ url: "https://example.com/hooks/paid", body: { order: 42 } });
 * console.log((await r.get()).status); // 200
 */
export const httpTask = (app: App, options: HttpTaskOptions = {}): Task<[request: HttpRequest], HttpResponse> => {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
  if (!(timeout > 0) || !Number.isFinite(timeout))
    throw new RangeError(`httpTask: 'timeout' must be a positive number of ms (got ${String(options.timeout)})`);
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const secret = options.secret;
  const handler = async function (this: TaskContext, request: HttpRequest): Promise<HttpResponse> {
    const { url, method } = checkRequest(request);
    const href = url.href;
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);
    const headers: Record<string, string> = {
      "user-agent": "celerity-http-task",
      "x-celerity-task-id": this.id,
      ...request.headers,
    };
    if (body !== undefined) headers["content-type"] ??= "application/json";
    if (secret !== undefined) headers[SIGNATURE_HEADER] = signHttpBody(secret, body ?? "", Date.now());
    const signal = AbortSignal.any([this.signal, AbortSignal.timeout(timeout)]);
    let response: Response;
    try {
      response = await fetch(href, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        signal,
        redirect: "follow",
      });
    } catch (error) {
      if (this.signal.aborted) throw this.signal.reason;
      const timedOut = (error as { name?: string }).name === "TimeoutError";
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = timedOut
        ? `no answer within ${timeout} ms`
        : `${(error as Error).message}${cause?.code !== undefined ? ` (${cause.code})` : ""}`;
      throw new HttpTaskError({ url: href, reason, retryable: true });
    }
    if (!response.ok) {
      // The body is not kept on failure, but it must be read (or cancelled) to free the connection.
      await response.body?.cancel().catch(() => {});
      const retryable = RETRYABLE_STATUS(response.status);
      const error = new HttpTaskError({
        url: href,
        status: response.status,
        reason: `status ${response.status} ${response.statusText}`.trim(),
        retryable,
      });
      const after = retryable ? retryAfterMs(response.headers.get("retry-after"), Date.now()) : undefined;
      if (after !== undefined) this.retry({ countdown: after, cause: error });
      throw error;
    }
    const text = await readBody(response, href, maxBytes);
    const type = response.headers.get("content-type") ?? "";
    let parsed: unknown = text;
    if (type.includes("json") && text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    const responseHeaders: Record<string, string> = {};
    response.headers.forEach((value, name) => (responseHeaders[name] = value));
    return { status: response.status, headers: responseHeaders, body: parsed };
  };
  return app.task(options.name ?? "http.request", handler, {
    timeLimit: timeout * 2,
    retry: {
      ...DEFAULT_RETRY,
      ...options.retry,
      retryOn: (error) => error instanceof HttpTaskError && error.retryable,
    },
    ...(options.queue !== undefined ? { queue: options.queue } : {}),
  });
};
