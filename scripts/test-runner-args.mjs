// The arguments node's test runner gets from `npm test`: shared with the test
// that proves a test which never settles fails by its name within the limit.

/**
 * Per test (each `it`), in ms: scaled by CELERITY_TEST_TIME_SCALE like every limit in the tests. Room for a child
 * process or a pool's threads to start (START_TIMEOUT_MS, 60 s at worst under heavy load) and the test's own work.
 */
export const testTimeoutMs = () => {
  const fixed = process.env.CELERITY_TEST_TIMEOUT_MS;
  if (fixed !== undefined && fixed !== "") return Number(fixed);
  const raw = process.env.CELERITY_TEST_TIME_SCALE;
  const scale = raw === undefined || raw === "" ? 1 : Number(raw);
  if (!(scale > 0)) throw new Error(`CELERITY_TEST_TIME_SCALE must be a positive number, got '${raw}'`);
  return Math.round(120_000 * scale);
};

/** Per test file, in ms: a backstop for a file that hangs outside any test (in a hook, or at load). */
export const fileTimeoutMs = (testMs = testTimeoutMs()) => testMs * 10;

/**
 * node's arguments to run `files` under the test runner with the suite's
 * settings: each test bounded (test-timeouts.mjs, preloaded into every file),
 * each file bounded too. `timeoutMs` overrides the per-test limit (through
 * the environment the files inherit).
 */
export const runnerArgs = (files, { timeoutMs } = {}) => [
  "--import",
  "tsx",
  "--import",
  new URL("./test-timeouts.mjs", import.meta.url).href,
  "--test",
  "--test-concurrency=2",
  `--test-timeout=${fileTimeoutMs(timeoutMs)}`,
  ...files,
];
