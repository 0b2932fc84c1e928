/**
 * JSON responses for the HTTP API: values made JSON-safe (bigints as
 * strings, bytes as their length, dates as ISO 8601) and errors as
 * `{ error, message }` with their status.
 */
import type { HttpApiError } from "./http-api-errors.ts";

const jsonSafe = (_key: string, value: unknown): unknown => {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return { bytes: value.byteLength };
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
};

/** `body` as a JSON response with `status` (200 unless told). */
export const jsonResponse = (body: unknown, status = 200, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body, jsonSafe), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers },
  });

/** The response for a refused request. */
export const errorResponse = (error: HttpApiError, headers: Record<string, string> = {}): Response =>
  jsonResponse({ error: error.code, message: error.reason }, error.status, headers);
