/**
 * An app whose beat keeps its schedules in PostgreSQL, over a broker node in
 * this process, on a virtual clock: what the beat tests that kill, cut or
 * fail a leader start from. Everything it opens is closed and dropped when
 * the test ends, passed or not.
 */
import { BrokerNode } from "../../broker/node/node-server.ts";
import { NodeTransport } from "../../broker/node/client/node-transport.ts";
import type { Transport } from "../../broker/transport.ts";
import { createApp, type App } from "../../runtime/app.ts";
import { dropSchema, testSchema, TEST_POSTGRES_URL } from "../../runtime/results/postgres-test-support.ts";
import { ManualClock } from "../../runtime/schedule/beat-clock.ts";
import { PostgresScheduleStore } from "../../runtime/schedule/stores/postgres-schedule-store.ts";

export interface PostgresBeatApp {
  readonly node: BrokerNode;
  /** The PostgreSQL schema of the schedules (a fresh one, dropped at the end). */
  readonly schema: string;
  readonly clock: ManualClock;
  readonly app: App;
  /** Every line the app logged. */
  readonly logs: string[];
}

/**
 * Start a node and an app on it with its schedules in a fresh schema, on a
 * ManualClock at `start`. `storeBroker` wraps the transport the schedule
 * store publishes through (to fail its publishes, say); the app itself uses
 * the plain one.
 */
export const postgresBeatApp = async (
  t: { after: (fn: () => unknown) => void },
  start: number,
  storeBroker: (broker: Transport) => Transport = (broker) => broker,
): Promise<PostgresBeatApp> => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  t.after(() => node.stop());
  const schema = testSchema();
  t.after(() => dropSchema(schema));
  const clock = new ManualClock(start);
  const broker = await NodeTransport.connect(node.url);
  const store = new PostgresScheduleStore(TEST_POSTGRES_URL, storeBroker(broker), {
    schema,
    now: () => clock.now(),
  });
  const logs: string[] = [];
  const app = createApp({ broker, schedules: store, log: (line) => logs.push(line) });
  t.after(async () => {
    await app.close();
    await store.close();
  });
  return { node, schema, clock, app, logs };
};
