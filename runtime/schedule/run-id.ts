// The task id of a schedule's run at one instant, the same on every beat.
import { createHash } from "node:crypto";

/**
 * The task id of a schedule's run at one instant: the same on every beat, so
 * a run is one task whichever beat sends it, and `app.result(runId(...))`
 * finds it. Shaped as a UUID (version 8, name-based) for tools that expect one.
 *
 * @example
 * runId("report", Date.parse("2026-03-02T02:00:00Z")); // "3f0c…-…"
 */
export const runId = (schedule: string, instant: number): string => {
  const hex = createHash("sha256").update(`celerity.beat\u0000${schedule}\u0000${instant}`).digest("hex");
  const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
};
