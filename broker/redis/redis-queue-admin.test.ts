import { test } from "node:test";
import { queueAdminConformance } from "../queue-admin-conformance.ts";
import { isolatedTransport, redisSkipReason } from "./redis-test-support.ts";

const skip = await redisSkipReason();
if (skip) test("redis queue management conformance", { skip }, () => {});
else queueAdminConformance("redis", () => isolatedTransport());
