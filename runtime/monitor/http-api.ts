/**
 * The HTTP JSON API: a standard fetch handler, `(Request) => Promise<Response>`,
 * over an app: task state and result by id, workflows and group progress,
 * applying a registered task by name, revoking, the workers, the queues
 * with their dead letters, rate limits, and the OpenAPI document that
 * describes all of it. Mount it in any framework that speaks fetch (Hono,
 * Next.js route handlers) or serve it with `celerity monitor`.
 */
import { QueueNotFoundError } from "../../broker/errors.ts";
import type { App } from "../app.ts";
import { ControlError } from "../control/control-protocol.ts";
import { QueueManagementUnsupportedError } from "../control/queue-management.ts";
import { RateLimitError } from "../rate-limit/rate-setting.ts";
import { ApiQueries } from "./api-queries.ts";
import { HttpApiError, badRequest, notFound } from "./http-api-errors.ts";
import { authenticate, challengeOf, checkAuthOptions, type HttpAuth } from "./http-auth.ts";
import { errorResponse, jsonResponse } from "./http-response.ts";
import type { MonitorState } from "./monitor-state.ts";
import type { LiveUpdates } from "./live-updates.ts";
import { openApiDocument } from "./openapi.ts";
import {
  limitParameter,
  onlyFields,
  optionalBoolean,
  optionalIds,
  readJsonObject,
  sendOptionsOf,
  stateParameter,
} from "./request-input.ts";

/**
 * How `createHttpHandler` serves an app.
 *
 * @example
 * const handler = createHttpHandler(app, { basePath: "/celerity", auth: { token: process.env.CELERITY_API_TOKEN } });
 */
export interface HttpHandlerOptions {
  /** Credentials every route except `/openapi.json` requires. Default none. */
  readonly auth?: HttpAuth;
  /** The prefix the handler is mounted under (`"/celerity"`); requests outside it are 404. Default "". */
  readonly basePath?: string;
  /**
   * The monitor's picture of the cluster, fed with events: lets the API list
   * tasks, show their event timelines and serve throughput figures, and
   * know tasks the result store has forgotten. Without it those routes are 404.
   */
  readonly state?: MonitorState;
  /** Task names that may be applied besides those registered on `app` and those the workers report. */
  readonly tasks?: readonly string[];
  /** How long to wait for the workers' answers (inspect), in ms. Default 500. */
  readonly controlTimeoutMs?: number;
  /** Serves `/metrics` when given (Prometheus); without it `/metrics` is 404 saying metrics are not enabled. */
  readonly metrics?: (request: Request) => Promise<Response>;
  /**
   * Origins (`https://ops.example.com`) whose pages may send changes (POST,
   * PUT) besides the API's own. A browser names the page's origin on such
   * requests; one from elsewhere is refused (403), so a page on another site
   * cannot purge queues through a visitor's browser. Requests without an
   * Origin (curl, servers) are not concerned. Default none.
   */
  readonly allowedOrigins?: readonly string[];
}

/** A route's handler: the request, its URL and the path's parameters. */
type RouteHandler = (request: Request, url: URL, params: Readonly<Record<string, string>>) => Promise<Response>;

/**
 * One route of the API, as the OpenAPI document lists it.
 *
 * @example
 * const route: ApiRoute = { method: "GET", path: "/api/tasks/{id}", summary: "A task's state and result" };
 */
export interface ApiRoute {
  readonly method: "GET" | "POST" | "PUT";
  /** With `{name}` for each parameter, as in OpenAPI. */
  readonly path: string;
  readonly summary: string;
  /** True for the routes served without credentials. */
  readonly public?: boolean;
}

interface BoundRoute extends ApiRoute {
  readonly segments: readonly string[];
  readonly handle: RouteHandler;
}

const segmentsOf = (path: string): string[] => path.split("/").filter((segment) => segment.length > 0);

const matchRoute = (route: BoundRoute, segments: readonly string[]): Record<string, string> | undefined => {
  if (route.segments.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const pattern = route.segments[i];
    if (pattern.startsWith("{")) params[pattern.slice(1, -1)] = segments[i];
    else if (pattern !== segments[i]) return undefined;
  }
  return params;
};

const normalizedBase = (basePath: string | undefined): string => {
  if (basePath === undefined || basePath === "" || basePath === "/") return "";
  if (!basePath.startsWith("/")) throw new RangeError(`basePath must start with '/', got '${basePath}'`);
  return basePath.replace(/\/+$/, "");
};

/** Refuse a change sent by a page of another host than the API's own, unless its origin is allowed (403). */
const checkOrigin = (request: Request, url: URL, allowed: readonly string[]): void => {
  const origin = request.headers.get("origin");
  if (origin === null || allowed.includes(origin)) return;
  // The host alone: behind a proxy that ends TLS the page is https and the request reaching here http.
  if (URL.canParse(origin) && new URL(origin).host === url.host) return;
  throw new HttpApiError({
    status: 403,
    code: "cross_origin",
    reason: `a page of ${origin} may not send changes to this API (it is served at ${url.host}); add it to allowedOrigins to let it`,
  });
};

/** A thrown error as the response the client gets (its status, `{ error, message }`). */
export const responseForError = (error: unknown, auth: HttpAuth | undefined): Response => {
  if (error instanceof HttpApiError)
    return errorResponse(error, error.status === 401 && auth !== undefined ? challengeOf(auth) : {});
  if (error instanceof QueueManagementUnsupportedError)
    return errorResponse(new HttpApiError({ status: 501, code: "not_supported", reason: error.message }));
  if (error instanceof QueueNotFoundError) return errorResponse(notFound("unknown_queue", error.message));
  if (error instanceof RateLimitError) return errorResponse(badRequest(error.message));
  if (error instanceof ControlError) return jsonResponse({ error: "worker_error", message: error.message }, 502);
  return jsonResponse({ error: "internal", message: error instanceof Error ? error.message : String(error) }, 500);
};

/** The routes' table: the handler, the OpenAPI document and the tests all read it. */
export const API_ROUTES: readonly ApiRoute[] = [
  { method: "GET", path: "/openapi.json", summary: "This API's OpenAPI 3.1 document", public: true },
  { method: "GET", path: "/metrics", summary: "Prometheus metrics (404 unless metrics are enabled)" },
  { method: "GET", path: "/api/tasks", summary: "The tasks the monitor has seen, newest first, filtered" },
  { method: "GET", path: "/api/tasks/{id}", summary: "A task's state, result or error, retries and event timeline" },
  { method: "POST", path: "/api/tasks/{id}/revoke", summary: "Revoke a task (with terminate, abort it if running)" },
  { method: "GET", path: "/api/workflows/{id}", summary: "A workflow's steps, their links and states" },
  { method: "GET", path: "/api/groups/{id}", summary: "A group's progress: members finished, succeeded, failed" },
  { method: "GET", path: "/api/registered", summary: "The task names that can be applied" },
  { method: "POST", path: "/api/apply/{task}", summary: "Send a registered task by name with JSON arguments" },
  { method: "GET", path: "/api/workers", summary: "The workers: status, last heartbeat, active, processed, pool" },
  { method: "GET", path: "/api/queues", summary: "The queues with their depths" },
  { method: "POST", path: "/api/queues/{queue}/pause", summary: "Stop delivering a queue to every worker" },
  { method: "POST", path: "/api/queues/{queue}/resume", summary: "Deliver a paused queue again" },
  { method: "POST", path: "/api/queues/{queue}/purge", summary: "Delete every message waiting in a queue" },
  { method: "GET", path: "/api/queues/{queue}/dead-letters", summary: "A queue's dead letters with why each is there" },
  { method: "POST", path: "/api/queues/{queue}/dead-letters/requeue", summary: "Send dead letters back to run again" },
  { method: "POST", path: "/api/queues/{queue}/dead-letters/discard", summary: "Delete dead letters for good" },
  {
    method: "GET",
    path: "/api/rate-limits",
    summary: "Rate limits changed at run time, and tasks waiting for a token",
  },
  { method: "PUT", path: "/api/rate-limits/{task}", summary: "Change a task's rate limit on every worker" },
  {
    method: "GET",
    path: "/api/live",
    summary: "Live updates (Server-Sent Events): a snapshot of the cluster each second",
  },
  {
    method: "GET",
    path: "/api/stats",
    summary: "Task counts by state, event totals and rates, throughput and latency",
  },
];

/**
 * The HTTP JSON API over `app`, as a standard fetch handler. Every answer
 * is JSON; a refused request is `{ "error": code, "message": text }` with
 * its status (400 bad input naming what was wrong, 401 without valid
 * credentials, 404 an unknown id or name, 501 what the broker cannot do).
 * The OpenAPI 3.1 document is at `/openapi.json`.
 *
 * @example
 * import { createApp, createHttpHandler } from "celerity";
 * import { createServer } from "node:http";
 *
 * const app = createApp({ broker: "celerity://127.0.0.1:5690" });
 * const handler = createHttpHandler(app, { auth: { token: "s3cret" } });
 * const response = await handler(new Request("http://localhost/api/queues", { headers: { authorization: "Bearer s3cret" } }));
 * console.log(response.status, await response.json());
 */
export const createHttpHandler = (
  app: App,
  options: HttpHandlerOptions = {},
): ((request: Request) => Promise<Response>) => httpHandlerWith(app, options, new ApiQueries(app, options));

/** The API over `queries`, which the monitor shares with its live updates. */
export const httpHandlerWith = (
  app: App,
  options: HttpHandlerOptions,
  queries: ApiQueries,
  live?: LiveUpdates,
): ((request: Request) => Promise<Response>) => {
  checkAuthOptions(options.auth);
  const base = normalizedBase(options.basePath);
  const state = options.state;
  const needState = (what: string): MonitorState => {
    if (state === undefined)
      throw notFound(
        "no_event_history",
        `${what} needs the monitor's event history: serve the API with 'celerity monitor', or pass createHttpHandler(app, { state })`,
      );
    return state;
  };

  const handlers: Record<string, RouteHandler> = {
    "GET /openapi.json": async (request) =>
      jsonResponse(openApiDocument(API_ROUTES, base, new URL(request.url).origin)),
    // The spot where Prometheus metrics are mounted: options.metrics, made by runtime/metrics/.
    "GET /metrics": async (request) => {
      if (options.metrics !== undefined) return options.metrics(request);
      throw notFound("metrics_not_enabled", "metrics are not enabled on this server");
    },
    "GET /api/tasks": async (_request, url) => {
      const history = needState("listing tasks");
      const stateFilter = stateParameter(url);
      const name = url.searchParams.get("name") ?? "";
      const id = url.searchParams.get("id") ?? "";
      const limit = limitParameter(url, "limit", 100, 1000);
      const tasks = history.tasks.list({
        ...(stateFilter !== undefined ? { state: stateFilter } : {}),
        ...(name !== "" ? { name } : {}),
        ...(id !== "" ? { idPrefix: id } : {}),
        limit,
      });
      return jsonResponse({ tasks: tasks.map(({ timeline: _, ...task }) => task), known: history.tasks.size });
    },
    "GET /api/tasks/{id}": async (_request, _url, { id }) => jsonResponse(await queries.task(id)),
    "POST /api/tasks/{id}/revoke": async (request, _url, { id }) => {
      const body = await readJsonObject(request);
      onlyFields(body, ["terminate"]);
      const terminate = optionalBoolean(body, "terminate") ?? false;
      await queries.task(id);
      await app.revoke([id], { terminate });
      return jsonResponse({ id, revoked: true, terminate });
    },
    "GET /api/workflows/{id}": async (_request, _url, { id }) => jsonResponse(await queries.workflow(id)),
    "GET /api/groups/{id}": async (_request, _url, { id }) => jsonResponse(await queries.groupProgress(id)),
    "GET /api/registered": async () => jsonResponse({ tasks: await queries.registeredTasks() }),
    "POST /api/apply/{task}": async (request, url, { task }) => {
      const body = await readJsonObject(request);
      onlyFields(body, ["args", "options"]);
      const args = body.args ?? [];
      if (!Array.isArray(args))
        throw badRequest(`'args' must be a JSON array of the task's arguments, got ${JSON.stringify(args)}`);
      const sendOptions = sendOptionsOf(body.options);
      await queries.checkApplicable(task, args);
      const result = await app.sendTask(task, args, sendOptions);
      return jsonResponse(
        { id: result.id, task, state: "PENDING", url: `${base}/api/tasks/${encodeURIComponent(result.id)}` },
        202,
        { location: `${url.origin}${base}/api/tasks/${encodeURIComponent(result.id)}` },
      );
    },
    "GET /api/workers": async () => jsonResponse({ workers: await queries.workers() }),
    "GET /api/queues": async (_request, url) =>
      jsonResponse({ queues: await queries.queues(url.searchParams.get("all") === "true") }),
    "POST /api/queues/{queue}/pause": async (_request, _url, { queue }) => {
      await app.queues.pause(queue);
      return jsonResponse({ queue, paused: true });
    },
    "POST /api/queues/{queue}/resume": async (_request, _url, { queue }) => {
      await app.queues.resume(queue);
      return jsonResponse({ queue, paused: false });
    },
    "POST /api/queues/{queue}/purge": async (_request, _url, { queue }) =>
      jsonResponse({ queue, purged: await app.queues.purge(queue) }),
    "GET /api/queues/{queue}/dead-letters": async (_request, _url, { queue }) =>
      jsonResponse({ queue, deadLetters: await queries.deadLetters(queue) }),
    "POST /api/queues/{queue}/dead-letters/requeue": async (request, _url, { queue }) => {
      const body = await readJsonObject(request);
      onlyFields(body, ["ids"]);
      return jsonResponse({ queue, requeued: await app.queues.requeue(queue, optionalIds(body, "ids")) });
    },
    "POST /api/queues/{queue}/dead-letters/discard": async (request, _url, { queue }) => {
      const body = await readJsonObject(request);
      onlyFields(body, ["ids"]);
      return jsonResponse({ queue, discarded: await app.queues.discard(queue, optionalIds(body, "ids")) });
    },
    "GET /api/rate-limits": async () => jsonResponse(await queries.rateLimits()),
    "PUT /api/rate-limits/{task}": async (request, _url, { task }) => {
      const body = await readJsonObject(request);
      onlyFields(body, ["rate", "burst"]);
      return jsonResponse(await queries.changeRateLimit(task, body.rate, body.burst));
    },
    "GET /api/live": async () => {
      if (live === undefined)
        throw notFound("no_live_updates", "live updates are served by 'celerity monitor' (createMonitorHandler)");
      return live.stream();
    },
    "GET /api/stats": async () => {
      const history = needState("throughput and task counts");
      return jsonResponse({
        tasks: history.tasks.counts(),
        known: history.tasks.size,
        maxTasks: history.tasks.maxTasks,
        events: history.taskEventCount,
        series: history.series.points(),
      });
    },
  };

  const routes: BoundRoute[] = API_ROUTES.map((route) => {
    const handle = handlers[`${route.method} ${route.path}`];
    if (handle === undefined) throw new Error(`no handler for ${route.method} ${route.path}`);
    return { ...route, segments: segmentsOf(route.path), handle };
  });

  return async (request) => {
    try {
      const url = new URL(request.url);
      if (base !== "" && url.pathname !== base && !url.pathname.startsWith(`${base}/`))
        throw notFound("not_found", `${url.pathname} is outside ${base}`);
      let segments: string[];
      try {
        segments = segmentsOf(url.pathname.slice(base.length)).map(decodeURIComponent);
      } catch {
        throw badRequest(`the path ${url.pathname} is not valid percent-encoding`);
      }
      const matching = routes.flatMap((route) => {
        const params = matchRoute(route, segments);
        return params === undefined ? [] : [{ route, params }];
      });
      if (matching.length === 0) throw notFound("not_found", `no route ${url.pathname}; see ${base}/openapi.json`);
      const found = matching.find(({ route }) => route.method === request.method);
      if (found === undefined) {
        const allowed = matching.map(({ route }) => route.method).join(", ");
        return jsonResponse(
          {
            error: "method_not_allowed",
            message: `${request.method} is not allowed on ${url.pathname}; allowed: ${allowed}`,
          },
          405,
          { allow: allowed },
        );
      }
      if (found.route.public !== true) authenticate(request, options.auth);
      if (request.method !== "GET") checkOrigin(request, url, options.allowedOrigins ?? []);
      return await found.route.handle(request, url, found.params);
    } catch (error) {
      return responseForError(error, options.auth);
    }
  };
};
