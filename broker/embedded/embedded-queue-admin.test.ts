import { queueAdminConformance } from "../queue-admin-conformance.ts";
import { createEmbeddedBroker } from "./embedded-broker.ts";

queueAdminConformance("embedded", () => createEmbeddedBroker());
