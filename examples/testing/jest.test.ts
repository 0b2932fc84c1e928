// celerity/testing under jest: see docs/testing.md for running TypeScript ESM under jest.
// (In a project of your own the import is "celerity/testing"; here it is the repository's source.)
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { celerityMatchers, createTestApp, type CelerityMatchers, type TestApp } from "../../src/testing.ts";
import { defineTasks } from "./tasks.ts";

expect.extend(celerityMatchers);
declare module "expect" {
  interface Matchers<R> extends CelerityMatchers<R> {}
}

describe("signup", () => {
  let t: TestApp<ReturnType<typeof defineTasks>>;
  beforeEach(async () => {
    t = await createTestApp({ tasks: defineTasks });
  });
  afterEach(() => t.close());

  it("sends a welcome now and a follow-up a day later", async () => {
    await t.tasks.signup.delay("ada@example.com");
    await t.drain();
    expect(t).toHaveSent(t.tasks.sendEmail, ["ada@example.com", "Welcome"]);
    expect(t).not.toHaveSent("send-invoice");

    const followUp = t.sentOf("send-email")[1];
    await t.clock.advance("1d");
    expect(await t.app.result(followUp.id).get()).toBe("sent 'How is it going?' to ada@example.com");
  });

  it("runs tasks inline in eager mode", async () => {
    const eager = await createTestApp({ tasks: defineTasks, eager: true });
    try {
      const result = await eager.tasks.signup.delay("eve@example.com");
      expect(await result.get()).toBe("eve@example.com");
      expect(eager).toHaveSent("send-email", ["eve@example.com", "Welcome"]);
    } finally {
      await eager.close();
    }
  });
});
