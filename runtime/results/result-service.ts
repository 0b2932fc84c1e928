import type { BrokerNode } from "../../broker/node/node-server.ts";
import type { MessageGraph } from "../../dsl/graph.ts";
import type { TaskState } from "../../dsl/result.ts";
import { MemoryResultStore, type FinalOutcome, type ResultRecord, type ResultStore, type StateDetails } from "./result-store.ts";

/**
 * The result store a broker node serves to every process connected to it
 * (ops `results.*`): a MemoryResultStore on the node (a DurableResultStore
 * when the node has a data directory), and a push (Notify
 * frame, topic "result") to each connection waiting for a task to finish,
 * so a `get()` from any process wakes on the write, never by polling.
 */
export const RESULT_TOPIC = "result";

export const serveResults = <S extends ResultStore = MemoryResultStore>(node: BrokerNode, store: S = new MemoryResultStore() as ResultStore as S): S => {
  node.serve("results", (op, args, connection) => {
    switch (op) {
      case "setState":
        return store.setState(args[0] as string, args[1] as string, args[2] as TaskState, (args[3] ?? undefined) as StateDetails | undefined);
      case "start":
        return store.start(args[0] as string, args[1] as string, (args[2] ?? undefined) as StateDetails | undefined);
      case "complete":
        return store.complete(args[0] as string, args[1] as string, args[2] as FinalOutcome);
      case "get":
        return store.get(args[0] as string).then((record) => record ?? null);
      case "watch": {
        const id = args[0] as string;
        let done = false;
        // Resolves now if final, else when the write that finishes the task lands.
        store.waitFinal(id, undefined, () => new Error("unreachable")).then((record: ResultRecord) => {
          if (!done) connection.notify(RESULT_TOPIC, [id, record]);
        });
        connection.onClose(() => (done = true));
        return null;
      }
      case "forget":
        return store.forget(args[0] as string);
      case "saveGraph":
        return store.saveGraph(args[0] as MessageGraph);
      case "graph":
        return store.graph(args[0] as string).then((graph) => graph ?? null);
      case "arrive":
        return store.arrive(args[0] as string, args[1] as number);
      case "claim":
        return store.claim(args[0] as string);
      case "release":
        return store.release(args[0] as string);
      default:
        throw new Error(`unknown results op '${op}'`);
    }
  });
  return store;
};
