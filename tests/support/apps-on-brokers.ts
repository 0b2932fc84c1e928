/**
 * An app for a test on each kind of broker a behaviour must hold on: the
 * embedded broker in this process, and a broker node (with its result
 * service) reached over TCP. Each is closed when the test ends, also when
 * it failed.
 *
 * @example
 * for (const [name, make] of APPS_ON_BROKERS) {
 *   it(`runs a task over the ${name}`, async (t) => {
 *     const app = await make(t, []);
 *   });
 * }
 */
import type { TestContext } from "node:test";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { createApp, type App } from "../../runtime/app.ts";
import { serveResults } from "../../runtime/results/result-service.ts";

/** An app for test `t`, whose runtime log lines go to `logs`. */
export type MakeApp = (t: Pick<TestContext, "after">, logs?: string[]) => Promise<App>;

const logTo = (logs: string[] | undefined) => (logs === undefined ? () => {} : (line: string) => void logs.push(line));

/** An app on its own embedded broker. */
export const embeddedApp: MakeApp = async (t, logs) => {
  const app = createApp({ log: logTo(logs) });
  t.after(() => app.close());
  return app;
};

/** An app on a broker node of its own (started on a free port, serving results). */
export const appOverNode: MakeApp = async (t, logs) => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node);
  const app = createApp({ broker: node.url, log: logTo(logs) });
  t.after(async () => {
    await app.close();
    await node.stop();
  });
  return app;
};

/** Each kind of broker with its name, for tests repeated on both. */
export const APPS_ON_BROKERS = [
  ["embedded broker", embeddedApp],
  ["broker node", appOverNode],
] as const;
