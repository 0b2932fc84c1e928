import { test } from "node:test";
import { transportConformance } from "../conformance.ts";
import { isolatedTransport, redisSkipReason } from "./redis-test-support.ts";

const skip = await redisSkipReason();
if (skip) test("redis transport conformance", { skip }, () => {});
else transportConformance("redis", () => isolatedTransport());
