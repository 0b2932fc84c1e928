/**
 * celerity/postgres: results and beat schedules kept in PostgreSQL, durable
 * and queryable with SQL, with any broker. `createApp({ results:
 * "postgres://…", schedules: "postgres://…" })` needs none of this; the
 * stores are here for settings of your own (schema, pool size, time to
 * live) and their errors.
 *
 * @example
 * import { createApp } from "celerity";
 * import { PostgresResultStore } from "celerity/postgres";
 *
 * const results = new PostgresResultStore("postgres://postgres@127.0.0.1:5432/app", { schema: "jobs", poolSize: 20 });
 * const app = createApp({ broker: "redis://127.0.0.1:6379/0", results });
 *
 * @module
 */
export {
  PostgresResultStore,
  PostgresConnectionLostError,
  PostgresSchemaNameError,
  type PostgresResultStoreOptions,
} from "../runtime/results/postgres-result-store.ts";
export {
  PostgresScheduleStore,
  type PostgresScheduleStoreOptions,
} from "../runtime/schedule/stores/postgres-schedule-store.ts";
