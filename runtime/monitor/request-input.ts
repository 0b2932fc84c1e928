/**
 * Reading the HTTP API's input: the JSON body and query parameters, each
 * checked, a mistake becoming a 400 that names the field and what it got.
 */
import type { SendOptions } from "../../dsl/options.ts";
import { badRequest } from "./http-api-errors.ts";
import { MONITORED_STATES, type MonitoredState } from "./task-history.ts";

/** Most bytes of a request body the API reads. */
export const MAX_BODY_BYTES = 1024 * 1024;

const describe = (value: unknown): string =>
  value === null
    ? "null"
    : Array.isArray(value)
      ? "an array"
      : typeof value === "object"
        ? "an object"
        : JSON.stringify(value);

/** The body as a JSON object; an empty body is `{}`. */
export const readJsonObject = async (request: Request): Promise<Record<string, unknown>> => {
  const text = await request.text();
  if (text.length > MAX_BODY_BYTES) throw badRequest(`the body is larger than ${MAX_BODY_BYTES} bytes`);
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw badRequest(`the body is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw badRequest(`the body must be a JSON object, got ${describe(value)}`);
  return value as Record<string, unknown>;
};

/** Refuse fields of `body` other than `allowed`, naming them. */
export const onlyFields = (body: Record<string, unknown>, allowed: readonly string[], where = "the body"): void => {
  const unknown = Object.keys(body).filter((key) => !allowed.includes(key));
  if (unknown.length > 0)
    throw badRequest(
      `${where} has unknown field(s) ${unknown.map((key) => `'${key}'`).join(", ")}; allowed: ${allowed.join(", ")}`,
    );
};

export const optionalBoolean = (body: Record<string, unknown>, field: string): boolean | undefined => {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw badRequest(`'${field}' must be true or false, got ${describe(value)}`);
  return value;
};

/** An optional list of non-empty strings (message or task ids). */
export const optionalIds = (body: Record<string, unknown>, field: string): string[] | undefined => {
  const value = body[field];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string" && item.length > 0))
    throw badRequest(`'${field}' must be an array of non-empty strings, got ${describe(value)}`);
  return value as string[];
};

const optionalNumber = (
  options: Record<string, unknown>,
  field: string,
  min: number,
  integer = false,
): number | undefined => {
  const value = options[field];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || (integer && !Number.isInteger(value)))
    throw badRequest(
      `'options.${field}' must be ${integer ? "an integer" : "a number"} of at least ${min}, got ${describe(value)}`,
    );
  return value;
};

const optionalTime = (options: Record<string, unknown>, field: string): number | undefined => {
  const value = options[field];
  if (value === undefined) return undefined;
  const ms = typeof value === "number" ? value : typeof value === "string" ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms))
    throw badRequest(`'options.${field}' must be an ISO 8601 time or epoch ms, got ${describe(value)}`);
  return ms;
};

const optionalText = (options: Record<string, unknown>, field: string): string | undefined => {
  const value = options[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length === 0)
    throw badRequest(`'options.${field}' must be a non-empty string, got ${describe(value)}`);
  return value;
};

/** The send options the apply route accepts. */
export const APPLY_OPTIONS = [
  "queue",
  "priority",
  "countdown",
  "eta",
  "expires",
  "taskId",
  "timeLimit",
  "softTimeLimit",
] as const;

/** `options` of an apply request as SendOptions; times in ms, as `applyAsync` takes them. */
export const sendOptionsOf = (value: unknown): SendOptions => {
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw badRequest(`'options' must be a JSON object, got ${describe(value)}`);
  const options = value as Record<string, unknown>;
  onlyFields(options, APPLY_OPTIONS, "'options'");
  const queue = optionalText(options, "queue");
  const priority = optionalNumber(options, "priority", 0, true);
  const countdown = optionalNumber(options, "countdown", 0);
  const eta = optionalTime(options, "eta");
  const expires = optionalTime(options, "expires");
  const taskId = optionalText(options, "taskId");
  const timeLimit = optionalNumber(options, "timeLimit", 1);
  const softTimeLimit = optionalNumber(options, "softTimeLimit", 1);
  return {
    ...(queue !== undefined ? { queue } : {}),
    ...(priority !== undefined ? { priority } : {}),
    ...(countdown !== undefined ? { countdown } : {}),
    ...(eta !== undefined ? { eta: new Date(eta) } : {}),
    // A number is ms from now, as applyAsync takes it; a time string is when.
    ...(expires !== undefined ? { expires: typeof options.expires === "number" ? expires : new Date(expires) } : {}),
    ...(taskId !== undefined ? { taskId } : {}),
    ...(timeLimit !== undefined ? { timeLimit } : {}),
    ...(softTimeLimit !== undefined ? { softTimeLimit } : {}),
  };
};

/** The `state` query parameter, if given. */
export const stateParameter = (url: URL): MonitoredState | undefined => {
  const value = url.searchParams.get("state");
  if (value === null || value === "") return undefined;
  const state = value.toUpperCase() as MonitoredState;
  if (!MONITORED_STATES.includes(state))
    throw badRequest(`'state' must be one of ${MONITORED_STATES.join(", ")}, got '${value}'`);
  return state;
};

/** An integer query parameter from 1 to `max`, or `fallback` when absent. */
export const limitParameter = (url: URL, name: string, fallback: number, max: number): number => {
  const value = url.searchParams.get(name);
  if (value === null || value === "") return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max)
    throw badRequest(`'${name}' must be an integer from 1 to ${max}, got '${value}'`);
  return n;
};
