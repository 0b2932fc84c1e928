// Test helpers for the PostgreSQL result store: the tests' database url, the skip when it
// is unreachable, a schema per test and its removal.
import { randomUUID } from "node:crypto";
import { serviceSkipReason } from "../../tests/support/service-probe.ts";
import pg from "pg";

/** The PostgreSQL the tests use: CELERITY_TEST_POSTGRES_URL, else database "test" on loopback (each test in a schema of its own). */
export const TEST_POSTGRES_URL = process.env.CELERITY_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Why the PostgreSQL tests skip (it does not answer), or false; with CELERITY_REQUIRE_SERVICES=1 they run (and fail) instead. */
export const postgresSkipReason = (): Promise<string | false> =>
  serviceSkipReason("PostgreSQL", TEST_POSTGRES_URL, 5432, "CELERITY_TEST_POSTGRES_URL");

/** A schema name no other test shares. */
export const testSchema = (): string => `celerity_test_${randomUUID().replace(/-/g, "").slice(0, 12)}`;

/** Drop a test's schema and everything in it. */
export const dropSchema = async (schema: string): Promise<void> => {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
};
