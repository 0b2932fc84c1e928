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

// Tests of this file running now, and when one last started or ended (see the exit below).
let running = 0;
let lastActivity = Date.now();
const ended = () => {
  running--;
  lastActivity = Date.now();
};

/** `fn`, counted while it runs; its length is kept, since the runner reads a callback-style test from it. */
const tracked = (fn) => {
  if (typeof fn !== "function") return fn;
  const counted = function (...args) {
    running++;
    lastActivity = Date.now();
    let result;
    try {
      result = fn.apply(this, args);
    } catch (error) {
      ended();
      throw error;
    }
    if (result !== null && typeof result === "object" && typeof result.then === "function")
      return result.finally(ended);
    ended();
    return result;
  };
  Object.defineProperty(counted, "length", { value: fn.length });
  Object.defineProperty(counted, "name", { value: fn.name });
  return counted;
};

// A test's own timeout is scaled like every other limit (CELERITY_TEST_TIME_SCALE).
const withTimeout = (define) => {
  const bounded = (...args) => {
    const last = args.length - 1;
    if (typeof args[last] === "function") args[last] = tracked(args[last]);
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
// result it has. "Done" is judged by the tests themselves, not by the root's
// after hook alone: a file that awaits at its top level between two suites
// has that hook run after the first suite, while the later ones are still to
// run, and ending the process then would drop them without a word.
const IDLE_MS = 5_000;
const endWhenIdle = () => {
  const idle = Date.now() - lastActivity;
  if (running > 0 || idle < IDLE_MS) {
    setTimeout(endWhenIdle, running > 0 ? IDLE_MS : IDLE_MS - idle).unref();
    return;
  }
  console.error(`${process.argv[1]}: handles left open after the last test kept the process alive; ending it`);
  process.exit(process.exitCode ?? 0);
};
nodeTest.after(() => {
  setTimeout(endWhenIdle, IDLE_MS).unref();
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
