/**
 * The dashboard's files (dashboard/index.html, monitor.css, monitor.js),
 * read once and served by the monitor itself: no CDN, no build step, so
 * the page works on a machine without internet access.
 */
import { readFileSync } from "node:fs";

/**
 * One static file of the page.
 *
 * @example
 * const page = dashboardAsset("/");
 * if (page !== undefined) return new Response(page.body, { headers: { "content-type": page.type } });
 */
export interface DashboardAsset {
  readonly body: string;
  readonly type: string;
}

const FILES: Record<string, { readonly file: string; readonly type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/assets/monitor.css": { file: "monitor.css", type: "text/css; charset=utf-8" },
  "/assets/monitor.js": { file: "monitor.js", type: "text/javascript; charset=utf-8" },
};

const loaded = new Map<string, string>();

/** The asset served at `path` (relative to the monitor's base), or undefined. */
export const dashboardAsset = (path: string): DashboardAsset | undefined => {
  const entry = Object.hasOwn(FILES, path) ? FILES[path] : undefined;
  if (entry === undefined) return undefined;
  let body = loaded.get(entry.file);
  if (body === undefined) {
    body = readFileSync(new URL(`./dashboard/${entry.file}`, import.meta.url), "utf8");
    loaded.set(entry.file, body);
  }
  return { body, type: entry.type };
};
