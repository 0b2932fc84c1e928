/**
 * The tasks of the peers bench on celerity, registered on an app: the
 * producer registers them for their names and options, the worker (in this
 * process for the embedded broker, in a worker process for the node) runs
 * them, counting each on its probe. Every task but the workflow steps ignores
 * its result, as the no-op jobs of the peers keep none either.
 */
import type { App } from "../../../src/index.ts";
import type { Probe } from "../probe.ts";

export const defineTasks = (app: App, probe?: Probe) => ({
  noop: app.task(
    "peers.noop",
    (_n: number) => {
      probe?.started();
      probe?.ended();
    },
    { ignoreResult: true, queue: "celerity-peers-work" },
  ),
  stamp: app.task(
    "peers.stamp",
    (sentAt: number) => {
      probe?.stamped(sentAt);
      probe?.ended();
    },
    { ignoreResult: true, queue: "celerity-peers-work" },
  ),
  add: app.task(
    "peers.add",
    (x: number, y: number) => {
      probe?.started();
      probe?.ended();
      return x + y;
    },
    { queue: "celerity-peers-work" },
  ),
  tsum: app.task(
    "peers.tsum",
    (xs: number[]) => {
      probe?.started();
      let sum = 0;
      for (const x of xs) sum += x;
      probe?.ended();
      return sum;
    },
    { queue: "celerity-peers-work" },
  ),
});

export type PeerTasks = ReturnType<typeof defineTasks>;
