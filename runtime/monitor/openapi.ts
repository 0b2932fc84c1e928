/**
 * The OpenAPI 3.1 document of the HTTP API, built from its route table so
 * that every route is described: its path parameters, query parameters,
 * request body, answers, and the security the server asks for.
 */
import type { ApiRoute } from "./http-api.ts";
import { APPLY_OPTIONS } from "./request-input.ts";
import { MONITORED_STATES } from "./task-history.ts";

type Schema = Record<string, unknown>;

const ERROR: Schema = {
  type: "object",
  required: ["error", "message"],
  properties: { error: { type: "string" }, message: { type: "string" } },
};

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

const errorAnswer = (description: string) => ({
  description,
  content: { "application/json": { schema: ref("Error") } },
});

const objectBody = (properties: Schema, required: string[] = []) => ({
  required: required.length > 0,
  content: {
    "application/json": { schema: { type: "object", additionalProperties: false, properties, required } },
  },
});

/** What each route takes beyond its path parameters, and its answer. */
const DETAILS: Record<
  string,
  { query?: Schema[]; body?: Schema; answer: string; answerSchema?: Schema; errors?: number[] }
> = {
  "GET /openapi.json": { answer: "This document" },
  "GET /metrics": { answer: "Metrics in Prometheus's text format", errors: [404] },
  "GET /api/tasks": {
    query: [
      { name: "state", in: "query", schema: { type: "string", enum: MONITORED_STATES } },
      { name: "name", in: "query", description: "tasks whose name contains this", schema: { type: "string" } },
      { name: "id", in: "query", description: "tasks whose id starts with this", schema: { type: "string" } },
      { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
    ],
    answer: "The tasks, newest first",
    errors: [400, 404],
  },
  "GET /api/tasks/{id}": { answer: "The task", answerSchema: ref("Task"), errors: [404] },
  "POST /api/tasks/{id}/revoke": {
    body: objectBody({ terminate: { type: "boolean", description: "abort it if it is running" } }),
    answer: "Revoked",
    errors: [400, 404],
  },
  "GET /api/workflows/{id}": { answer: "The workflow's steps", errors: [404] },
  "GET /api/groups/{id}": { answer: "The group's progress", errors: [404] },
  "GET /api/registered": { answer: "Task names" },
  "POST /api/apply/{task}": {
    body: objectBody({
      args: { type: "array", description: "the task's arguments" },
      options: {
        type: "object",
        additionalProperties: false,
        properties: Object.fromEntries(APPLY_OPTIONS.map((option) => [option, {}])),
        description:
          "queue, priority, countdown (ms), eta (ISO 8601 or epoch ms), expires (ms from now or ISO 8601), taskId, timeLimit and softTimeLimit (ms)",
      },
    }),
    answer: "Sent: the task's id and where to read its state",
    errors: [400, 404],
  },
  "GET /api/workers": { answer: "The workers" },
  "GET /api/queues": {
    query: [{ name: "all", in: "query", description: "include internal queues", schema: { type: "boolean" } }],
    answer: "The queues",
    errors: [501],
  },
  "POST /api/queues/{queue}/pause": { answer: "Paused", errors: [501] },
  "POST /api/queues/{queue}/resume": { answer: "Resumed", errors: [501] },
  "POST /api/queues/{queue}/purge": { answer: "How many messages were deleted", errors: [404, 501] },
  "GET /api/queues/{queue}/dead-letters": { answer: "The dead letters", errors: [404] },
  "POST /api/queues/{queue}/dead-letters/requeue": {
    body: objectBody({ ids: { type: "array", items: { type: "string" }, description: "default: all" } }),
    answer: "How many were requeued",
    errors: [400, 404, 501],
  },
  "POST /api/queues/{queue}/dead-letters/discard": {
    body: objectBody({ ids: { type: "array", items: { type: "string" }, description: "default: all" } }),
    answer: "How many were deleted",
    errors: [400, 404, 501],
  },
  "GET /api/rate-limits": { answer: "Changes made at run time; tasks waiting for a token, by worker" },
  "PUT /api/rate-limits/{task}": {
    body: objectBody(
      {
        rate: {
          type: ["string", "number", "null"],
          description: '"10/s", "100/m", "5/h", a number per second, or null for none',
        },
        burst: { type: "integer", minimum: 1 },
      },
      ["rate"],
    ),
    answer: "The limit now in force",
    errors: [400],
  },
  "GET /api/live": {
    answer:
      "text/event-stream: an 'update' event each second with workers, queues, task counts and the per-second series",
    errors: [404],
  },
  "GET /api/stats": { answer: "Counts and per-second series", errors: [404] },
};

const STATUS_TEXT: Record<number, string> = {
  400: "Bad input: the message names what was wrong",
  403: "A change sent by a page of another origin",
  404: "Unknown id or name",
  501: "The broker cannot do this",
};

/**
 * The OpenAPI 3.1 document for `routes`, served under `basePath` at `origin`.
 *
 * @example
 * const document = openApiDocument(API_ROUTES, "", "http://127.0.0.1:5555");
 */
export const openApiDocument = (routes: readonly ApiRoute[], basePath: string, origin: string) => {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const key = `${route.method} ${route.path}`;
    const details = DETAILS[key] ?? { answer: "OK" };
    const pathParameters = [...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
      name,
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    const responses: Record<string, unknown> = {
      [route.method === "POST" && route.path === "/api/apply/{task}" ? "202" : "200"]: {
        description: details.answer,
        content:
          route.path === "/api/live"
            ? { "text/event-stream": { schema: { type: "string" } } }
            : { "application/json": { schema: details.answerSchema ?? { type: "object" } } },
      },
    };
    for (const status of details.errors ?? []) responses[String(status)] = errorAnswer(STATUS_TEXT[status] ?? "Error");
    if (route.method !== "GET") responses["403"] = errorAnswer(STATUS_TEXT[403]);
    if (route.public !== true)
      responses["401"] = errorAnswer("Missing or wrong credentials (when the server asks for them)");
    paths[route.path] ??= {};
    paths[route.path][route.method.toLowerCase()] = {
      summary: route.summary,
      operationId: key.replace(/[^A-Za-z0-9]+/g, "_").replace(/_+$/, ""),
      ...(route.public === true ? { security: [] } : {}),
      parameters: [...pathParameters, ...(details.query ?? [])],
      ...(details.body !== undefined ? { requestBody: details.body } : {}),
      responses,
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "celerity HTTP API",
      version: "1",
      description:
        "Task state and results, workflows, applying tasks, revoking, workers, queues and dead letters of a celerity cluster. Refused requests answer { error, message }.",
    },
    servers: [{ url: `${origin}${basePath}` }],
    security: [{ bearer: [] }, { basic: [] }],
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" }, basic: { type: "http", scheme: "basic" } },
      schemas: {
        Error: ERROR,
        Task: {
          type: "object",
          required: ["id", "name", "state", "sources", "retries", "timeline"],
          properties: {
            id: { type: "string" },
            name: { type: "string" },
            state: { type: "string", enum: MONITORED_STATES },
            sources: { type: "array", items: { type: "string", enum: ["results", "events"] } },
            retries: { type: "integer" },
            result: {},
            error: {
              type: "object",
              properties: {
                name: { type: "string" },
                message: { type: "string" },
                traceback: { type: ["string", "null"] },
              },
            },
            progress: {},
            workflow: { type: "object", properties: { id: { type: "string" }, step: { type: "integer" } } },
            updatedAt: { type: "string", format: "date-time" },
            worker: { type: "string" },
            args: { type: "string" },
            queue: { type: "string" },
            runtime: { type: "number" },
            timeline: { type: "array", items: { type: "object" } },
          },
        },
      },
    },
    paths,
  };
};
