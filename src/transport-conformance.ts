/**
 * celerity/transport/conformance: the tests every transport must pass,
 * registered with `node:test`. Import it only from a test file.
 *
 * @example
 * // my-transport.conformance.test.ts, run with `node --test`
 * import { transportConformance } from "celerity/transport/conformance";
 * import { MyTransport } from "./my-transport.js";
 *
 * transportConformance("my", () => MyTransport.connect("my://localhost"));
 *
 * @module
 */
export { transportConformance } from "../broker/conformance.ts";
/** For transports that also manage queues (QueueAdmin): pause, purge, dead-letter requeue, auto-delete queues. */
export { queueAdminConformance } from "../broker/queue-admin-conformance.ts";
