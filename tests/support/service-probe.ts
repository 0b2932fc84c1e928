/**
 * Whether a service a test needs (Redis, PostgreSQL, ...) answers on its
 * port: one TCP connect, bounded, and a skip reason for node:test when it
 * does not (which fails instead with CELERITY_REQUIRE_SERVICES=1, as in CI).
 *
 * @example
 * const skip = await serviceSkipReason("Redis", "redis://127.0.0.1:6379/11", 6379, "CELERITY_TEST_REDIS_URL");
 * describe("on Redis", { skip }, () => { ... });
 */
import { Socket } from "node:net";
import { skipUnless } from "./prerequisites.ts";

/**
 * How long a connect may take before the service counts as absent. A service
 * that is not running on loopback refuses at once; this limit is for a host
 * that does not answer. It is long because a short one fires on a starved
 * event loop (a loaded machine, a file still compiling) before the connect's
 * own callback runs: 5 s once skipped Redis tests while Redis was up.
 */
const PROBE_TIMEOUT_MS = 30_000;

/** Whether a TCP connection to the host and port of `url` (or `defaultPort` when it names none) opens. */
export const reachable = (url: string, defaultPort: number): Promise<boolean> => {
  const { hostname, port } = new URL(url);
  return new Promise<boolean>((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.once("error", () => done(false));
    socket.connect(Number(port || defaultPort), hostname, () => done(true));
  });
};

/** Why the tests of service `name` at `url` skip (it does not answer), or false; `variable` is the setting that names another url. */
export const serviceSkipReason = async (
  name: string,
  url: string,
  defaultPort: number,
  variable: string,
): Promise<string | false> =>
  skipUnless(await reachable(url, defaultPort), `${name} is not reachable at ${url} (set ${variable})`);
