import { transportConformance } from "../conformance.ts";
import { nodeWithTransport } from "./node-test-support.ts";

transportConformance("tcp node (in memory)", () => nodeWithTransport());
transportConformance("tcp node (durable log)", () => nodeWithTransport({ durable: true }));
