/**
 * celerity/testing: test an app's tasks without infrastructure and without
 * waiting. An app on the embedded broker with a virtual clock, `drain()`,
 * what was sent, stubs for handlers, and an eager mode.
 *
 * @example
 * import { createTestApp } from "celerity/testing";
 * const t = await createTestApp();
 * const add = t.app.task("add", (x: number, y: number) => x + y);
 * const result = await add.applyAsync([2, 2], { countdown: 3_600_000 });
 * await t.clock.advance("1h");
 * await result.get(); // 4
 * await t.close();
 */
export { createTestApp, TestApp, TestClock, type TestAppOptions } from "../runtime/testing/test-app.ts";
export { VirtualClock, VirtualTimer, type Settle } from "../runtime/testing/virtual-clock.ts";
export { toMilliseconds, DurationError, type Duration } from "../runtime/testing/duration.ts";
export { assertSent, assertNotSent, findSent, type SentTask, type TaskRef } from "../runtime/testing/sent-tasks.ts";
export type { Stub } from "../runtime/testing/task-stubs.ts";
export { celerityMatchers, type CelerityMatchers } from "../runtime/testing/matchers.ts";
export { DrainTimeoutError, EagerRunError, StubError, ReentrantDrainError } from "../runtime/testing/testing-errors.ts";
export { systemClock, type Clock, type ClockTimer } from "../broker/clock.ts";
