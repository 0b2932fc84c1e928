// The workflow executor: starts a compiled workflow, and when a step finishes, advances the
// joins waiting on it and sends what they complete, or fails what lies downstream.
import type { Codec } from "../../broker/codec.ts";
import { leavesOf, materialize, startNodes, type GraphNode, type MessageGraph } from "../../dsl/graph.ts";
import type { RemoteErrorInfo, TaskFailure } from "../../dsl/result.ts";
import { LRUCache } from "lru-cache";
import { TaskRevokedError, UpstreamFailure, WorkflowNotFoundError, toErrorInfo } from "../errors.ts";
import type { Publisher } from "../publisher.ts";
import type { ResultStore } from "../results/result-store.ts";

/**
 * Advances compiled workflows. When a step succeeds, each step waiting on it
 * advances its join counter by one (an O(1) step); the step that completes a
 * join is sent with its input. When a step fails, every step downstream is
 * failed with an error naming the step that failed, and the error callbacks
 * watching them fire once each.
 */
export class WorkflowExecutor {
  private readonly graphs = new LRUCache<string, MessageGraph>({ max: 1_000 });
  private readonly loading = new Map<string, Promise<MessageGraph>>();

  constructor(
    private readonly store: ResultStore,
    private readonly publisher: Publisher,
    private readonly codec: Codec,
    /** Whether a task id is revoked (the broker's record, mirrored by every connected process). */
    private readonly isRevoked: (id: string) => boolean = () => false,
  ) {}

  /** Store the graph, mark every step PENDING, and send the steps that wait for nothing. */
  async start(graph: MessageGraph): Promise<void> {
    this.graphs.set(graph.id, graph);
    await this.store.saveGraph(graph);
    await Promise.all(
      graph.nodes.map((node) =>
        this.store.setState(node.id, node.task, "PENDING", { workflow: graph.id, node: node.index }),
      ),
    );
    // A start node that still has an `after` waits on an empty group with nothing before it: its input is that empty list.
    await Promise.all(
      startNodes(graph).map((node) =>
        this.publish(graph, node, node.after && materialize(node.after, () => undefined)),
      ),
    );
  }

  /** Step `nodeIndex` of workflow `workflow` succeeded with `value`. Safe to repeat: a step counts once per join. */
  async succeeded(workflow: string, nodeIndex: number, value: unknown): Promise<void> {
    const graph = await this.graphOf(workflow);
    const node = graph.nodes[nodeIndex];
    for (const nextIndex of node.next) {
      const next = graph.nodes[nextIndex];
      const arrived = next.waitsFor === 1 ? 1 : await this.store.arrive(`${graph.id}:${nextIndex}`, node.index);
      if (arrived !== next.waitsFor) continue;
      const input = next.passInput ? await this.inputOf(graph, next, node.index, value) : undefined;
      await this.send(graph, next, input);
    }
  }

  /** Step `nodeIndex` of workflow `workflow` failed for good (after retries, or revoked) with `error`. */
  async failed(workflow: string, nodeIndex: number, error: RemoteErrorInfo): Promise<void> {
    const graph = await this.graphOf(workflow);
    const origin = graph.nodes[nodeIndex];
    await this.fireErrbacks(graph, origin, error);
    const queue: GraphNode[] = origin.next.map((index) => graph.nodes[index]);
    while (queue.length > 0) {
      const node = queue.shift() as GraphNode;
      // A step revoked itself (a whole workflow revoked while one of its steps ran) reads REVOKED, not as its upstream's failure.
      const own = this.isRevoked(node.id)
        ? toErrorInfo(new TaskRevokedError({ id: node.id, task: node.task }))
        : toErrorInfo(
            new UpstreamFailure({
              kind: failedAs(node, origin.index),
              failedId: origin.id,
              failedTask: origin.task,
              cause: error,
            }),
          );
      const outcome =
        own.name === "TaskRevokedError"
          ? { state: "REVOKED" as const, error: own }
          : { state: "FAILURE" as const, error: own };
      // First failure wins: a step already failed by another member has already propagated.
      if (!(await this.store.complete(node.id, node.task, outcome))) continue;
      await this.fireErrbacks(graph, node, own);
      for (const index of node.next) queue.push(graph.nodes[index]);
    }
  }

  private async fireErrbacks(graph: MessageGraph, node: GraphNode, error: RemoteErrorInfo): Promise<void> {
    for (const index of node.errbacks) {
      if (!(await this.store.claim(`${graph.id}:errback:${index}`))) continue;
      const errback = graph.errbacks[index];
      const failure: TaskFailure = { id: node.id, task: node.task, error };
      await this.publisher.publish({
        id: errback.id,
        task: errback.task,
        args: [failure, ...errback.args],
        options: this.publisher.optionsFor(errback.task, errback.options),
        retries: 0,
        ...(errback.target !== undefined ? { target: errback.target } : {}),
      });
    }
  }

  private async inputOf(graph: MessageGraph, node: GraphNode, finished: number, value: unknown): Promise<unknown> {
    const after = node.after!;
    if ("node" in after && after.node === finished) return value;
    const values = new Map<number, unknown>([[finished, value]]);
    // All at once: with a remote result store each read is a round trip, and a chord of 1,000 read one by one waited for 999 of them in turn.
    const leaves = [...new Set(leavesOf(after))].filter((leaf) => leaf !== finished);
    const records = await Promise.all(leaves.map((leaf) => this.store.get(graph.nodes[leaf].id)));
    leaves.forEach((leaf, i) => {
      const record = records[i];
      if (record?.state !== "SUCCESS")
        throw new Error(
          `workflow ${graph.id}: result of step ${graph.nodes[leaf].id} is missing (expired or forgotten)`,
        );
      values.set(leaf, record.value === undefined ? undefined : this.codec.decode(record.value));
    });
    return materialize(after, (index) => values.get(index));
  }

  /**
   * Send a step once: a step re-advanced by a redelivered message is not sent
   * again. A send that can never succeed (arguments that cannot be encoded, no
   * queue to route to) fails the step and what follows it; any other error
   * (a lost connection) is thrown, so the message that advanced it is
   * redelivered and the send tried again.
   */
  private async send(graph: MessageGraph, node: GraphNode, input: unknown): Promise<void> {
    const key = `${graph.id}:sent:${node.index}`;
    if (!(await this.store.claim(key))) return;
    try {
      await this.publish(graph, node, input);
    } catch (error) {
      if (!isPermanent(error)) {
        await this.store.release(key);
        throw error;
      }
      const info = toErrorInfo(error);
      if (await this.store.complete(node.id, node.task, { state: "FAILURE", error: info }))
        await this.failed(graph.id, node.index, info);
    }
  }

  private publish(graph: MessageGraph, node: GraphNode, input: unknown): Promise<void> {
    const args = node.passInput ? [input, ...node.args] : node.args;
    return this.publisher.publish({
      id: node.id,
      task: node.task,
      args,
      options: this.publisher.optionsFor(node.target ?? node.task, node.options),
      retries: 0,
      workflow: graph.id,
      node: node.index,
      ...(node.target !== undefined ? { target: node.target } : {}),
    });
  }

  private graphOf(id: string): Promise<MessageGraph> {
    const cached = this.graphs.get(id);
    if (cached !== undefined) return Promise.resolve(cached);
    // One read per graph however many of its steps finish meanwhile: a worker running 64 steps of a new chord of 1,000 read its graph 64 times.
    let loading = this.loading.get(id);
    if (loading === undefined) {
      loading = this.store
        .graph(id)
        .then((graph) => {
          if (graph === undefined) throw new WorkflowNotFoundError({ workflow: id });
          this.graphs.set(id, graph);
          return graph;
        })
        .finally(() => this.loading.delete(id));
      this.loading.set(id, loading);
    }
    return loading;
  }
}

/**
 * How `node` depends on the step that failed: as a chord's body on one of
 * its header's members, or as the step after it. A node waiting on a list
 * (a chord body) is failed by a member only if that step is one of the
 * list's leaves; a step before the whole chord, or an empty group's gate, is
 * a plain previous step.
 */
const failedAs = (node: GraphNode, failed: number): "chord" | "chain" => {
  const after = node.after;
  if (after === undefined || !("list" in after) || after.list.length === 0) return "chain";
  return leavesOf(after).includes(failed) ? "chord" : "chain";
};

const PERMANENT = new Set(["CodecError", "UnroutableError", "ExchangeNotFoundError", "FrameTooLargeError"]);

/** Errors that sending again would only repeat. */
const isPermanent = (error: unknown): boolean => {
  // Errors keep their tag across the wire (broker/node/wire-errors.ts), so a node's refusal reads as the embedded broker's.
  const tag = (error as { _tag?: unknown } | null)?._tag;
  return typeof tag === "string" && PERMANENT.has(tag);
};
