// Preloaded into every test file by `npm test`: each test (`it`/`test`) that
// sets no timeout of its own gets the suite's, so a test that never settles
// fails by its own name instead of hanging the run. Node 20's runner applies
// --test-timeout to whole files only, so the default is set here, on
// node:test's exports, and published to ES module imports of it.
import { createRequire, syncBuiltinESMExports } from "node:module";
import { testTimeoutMs } from "./test-runner-args.mjs";

const require = createRequire(import.meta.url);
const nodeTest = require("node:test");
const timeout = testTimeoutMs();
const raw = process.env.CELERITY_TEST_TIME_SCALE;
const scale = raw === undefined || raw === "" ? 1 : Number(raw);

// A test's own timeout is scaled like every other limit (CELERITY_TEST_TIME_SCALE).
const withTimeout = (define) => {
  const bounded = (...args) => {
    const [first, second] = args;
    if (typeof first === "function") return define({ timeout }, first);
    if (typeof second === "function" || second === undefined) return define(first, { timeout }, ...args.slice(1));
    if (typeof second === "object" && second !== null) {
      const own =
        second.timeout === undefined
          ? timeout
          : Number.isFinite(second.timeout)
            ? Math.round(second.timeout * scale)
            : second.timeout;
      return define(first, { ...second, timeout: own }, ...args.slice(2));
    }
    return define(...args);
  };
  return Object.assign(bounded, define);
};

nodeTest.it = withTimeout(nodeTest.it);
nodeTest.test = withTimeout(nodeTest.test);
syncBuiltinESMExports();

// A test that failed before its cleanup can leave a server or socket open, and
// the file's process would then never end: once every test of the file is
// done, give open handles a few seconds, then end the process with the
// result it has.
nodeTest.after(() => {
  setTimeout(() => {
    console.error(`${process.argv[1]}: handles left open after the last test kept the process alive; ending it`);
    process.exit(process.exitCode ?? 0);
  }, 5_000).unref();
});

// Replay a property test's failure: fast-check prints the seed (and path) of
// a counterexample; run again with CELERITY_PROPERTY_SEED (and
// CELERITY_PROPERTY_PATH) set to them.
if (process.env.CELERITY_PROPERTY_SEED) {
  const fc = (await import("fast-check")).default;
  const path = process.env.CELERITY_PROPERTY_PATH;
  fc.configureGlobal({
    seed: Number(process.env.CELERITY_PROPERTY_SEED),
    ...(path ? { path, endOnFailure: true } : {}),
  });
}
