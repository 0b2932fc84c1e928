/**
 * The result store's operations on a broker node (prefix `results`),
 * declared once for the node's result service and the remote store that
 * calls it.
 */
import { check, operation, operationGroup } from "../../broker/node/operations.ts";
import type { MessageGraph } from "../../dsl/graph.ts";
import type { TaskState } from "../../dsl/result.ts";
import type { FinalOutcome, ResultRecord, StateDetails } from "./result-store.ts";

const TASK_STATES: readonly TaskState[] = ["PENDING", "RECEIVED", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED"];

export const resultOperations = operationGroup("results", {
  /** Sent without waiting for an answer (see RemoteResultStore.setState). */
  setState: operation<void>()(
    check.string("task id"),
    check.string("task name"),
    check.oneOf<TaskState>("state", TASK_STATES),
    check.optional(check.map<StateDetails>("state details")),
  ),
  /** Answered: the worker runs the task only if STARTED was recorded (no final state was there first). */
  start: operation<boolean>()(
    check.string("task id"),
    check.string("task name"),
    check.optional(check.map<StateDetails>("state details")),
  ),
  complete: operation<boolean>()(
    check.string("task id"),
    check.string("task name"),
    check.map<FinalOutcome>("outcome"),
  ),
  get: operation<ResultRecord | null>()(check.string("task id")),
  /** Subscribe this connection to the task's final record (pushed as a Notify on topic "result"). */
  watch: operation<null>()(check.string("task id")),
  forget: operation<void>()(check.string("task id")),
  saveGraph: operation<void>()(check.map<MessageGraph>("workflow graph")),
  graph: operation<MessageGraph | null>()(check.string("workflow id")),
  arrive: operation<number>()(check.string("join key"), check.number("member")),
  claim: operation<boolean>()(check.string("claim key")),
  release: operation<void>()(check.string("claim key")),
  /** Answers the id holding the key after the call (see ResultStore.reserve). */
  reserve: operation<string>()(
    check.string("reservation key"),
    check.string("task id"),
    check.number("reservation ttl"),
  ),
});
