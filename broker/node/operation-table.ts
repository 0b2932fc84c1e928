/**
 * The node's side of the declared operations: which handler serves each
 * operation name, and the dispatch of one request to it, with its arguments
 * checked against the declaration first. The broker's own operations and
 * every service's (results, rate limits, …) live in one table.
 */
import type { NodeConnection } from "./node-connection.ts";
import { type AnswerOf, type AnyOperation, type ReceivedOf, checkArguments } from "./operations.ts";
import { OperationNotPermittedError, ProtocolError } from "./protocol.ts";

/**
 * Serves one operation. `replyWanted` is false for requests sent without
 * an id (acks on the hot path); `payload` is the request's raw bytes, valid
 * only during the call.
 */
export type OperationHandler<O extends AnyOperation> = (
  args: ReceivedOf<O>,
  connection: NodeConnection,
  replyWanted: boolean,
  payload: Uint8Array,
) => AnswerOf<O> | Promise<AnswerOf<O>> | (AnswerOf<O> extends void ? Promise<unknown> | undefined : never);

/** A handler for every operation of a group. */
export type OperationHandlers<G> = {
  readonly [K in keyof G]: G[K] extends AnyOperation ? OperationHandler<G[K]> : never;
};

interface Entry {
  readonly op: AnyOperation;
  readonly handler: OperationHandler<AnyOperation>;
  /** Only a connection that presented the admin token may run it (when the node has one). */
  admin: boolean;
}

/** Decides whether a connection may run an admin operation with these arguments; a reason when not. */
export type AdminCheck = (name: string, args: readonly unknown[], connection: NodeConnection) => string | undefined;

export class OperationTable {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly mayRunAdmin: AdminCheck = () => undefined) {}

  /** Serve every operation of `group`; an operation served twice is a programming error. */
  add<G extends Readonly<Record<string, AnyOperation>>>(group: G, handlers: OperationHandlers<G>): void {
    for (const key of Object.keys(group)) {
      const op = group[key];
      if (this.entries.has(op.name)) throw new Error(`operation '${op.name}' is already served by this node`);
      this.entries.set(op.name, { op, handler: handlers[key] as OperationHandler<AnyOperation>, admin: false });
    }
  }

  /** Let only administrators run these operations of `group` (already added). */
  requireAdmin<G extends Readonly<Record<string, AnyOperation>>>(group: G, admin: readonly (keyof G)[]): void {
    for (const key of admin) {
      const entry = this.entries.get(group[key].name);
      if (entry === undefined) throw new Error(`operation '${group[key].name}' is not served by this node`);
      entry.admin = true;
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Run the request `[name, args]`: throws ProtocolError for an unknown operation or malformed arguments. */
  run(name: string, args: unknown[], connection: NodeConnection, replyWanted: boolean, payload: Uint8Array): unknown {
    const entry = this.entries.get(name);
    if (entry === undefined) throw new ProtocolError({ reason: unknownOperation(name) });
    const checked = checkArguments(entry.op, args);
    if (entry.admin && !connection.admin) {
      const refused = this.mayRunAdmin(name, checked, connection);
      if (refused !== undefined) throw new OperationNotPermittedError({ op: name, reason: refused });
    }
    return entry.handler(checked, connection, replyWanted, payload);
  }
}

/** What an unknown operation means: a group this node was started without (results, schedules…), or no operation at all. */
const unknownOperation = (name: string): string => {
  const dot = name.indexOf(".");
  if (dot <= 0) return `unknown op '${name}'`;
  return `unknown op '${name}': this node does not serve the '${name.slice(0, dot)}' operations (a node started by \`celerity broker\` or startFullNode serves them all)`;
};
