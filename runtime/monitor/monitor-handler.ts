/**
 * The monitor's whole web surface as one fetch handler: the dashboard's
 * page and assets, the live updates (Server-Sent Events at `api/live`), and
 * the HTTP JSON API beside them (live updates are one of its routes). The page and its assets hold no data and
 * are served without credentials; everything else asks for them when
 * credentials are configured.
 */
import type { App } from "../app.ts";
import { ApiQueries } from "./api-queries.ts";
import { dashboardAsset } from "./dashboard-assets.ts";
import { httpHandlerWith, type HttpHandlerOptions } from "./http-api.ts";
import { checkAuthOptions } from "./http-auth.ts";
import { LiveUpdates } from "./live-updates.ts";
import type { MonitorState } from "./monitor-state.ts";

/**
 * The monitor's handler and its live updates (closed with the server).
 *
 * @example
 * const monitor = createMonitorHandler(app, state, { auth: { token } });
 * const server = await serveFetch(monitor.handle, { host: "127.0.0.1", port: 5555 });
 */
export interface MonitorHandler {
  readonly handle: (request: Request) => Promise<Response>;
  readonly live: LiveUpdates;
}

export const createMonitorHandler = (
  app: App,
  state: MonitorState,
  options: Omit<HttpHandlerOptions, "state" | "basePath"> = {},
): MonitorHandler => {
  checkAuthOptions(options.auth);
  const apiOptions: HttpHandlerOptions = { ...options, state };
  const queries = new ApiQueries(app, apiOptions);
  const live = new LiveUpdates(state, queries);
  const api = httpHandlerWith(app, apiOptions, queries, live);
  const handle = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    if (request.method === "GET") {
      const asset = dashboardAsset(path);
      if (asset !== undefined)
        return new Response(asset.body, { headers: { "content-type": asset.type, "cache-control": "no-cache" } });
      // Browsers ask for one on their own; the page has none.
      if (path === "/favicon.ico") return new Response(null, { status: 204 });
    }
    return api(request);
  };
  return { handle, live };
};
