// celerity/testing under vitest 3: `npx vitest run examples/testing/vitest.test.ts`
// (In a project of your own the import is "celerity/testing"; here it is the repository's source.)
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { celerityMatchers, createTestApp, type CelerityMatchers, type TestApp } from "../../src/testing.ts";
import { defineTasks } from "./tasks.ts";

expect.extend(celerityMatchers);
declare module "vitest" {
  interface Assertion<T> extends CelerityMatchers<T> {}
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
    expect(t).toHaveSent("send-email", ["ada@example.com", "How is it going?"]);
    expect(t).not.toHaveSent("send-invoice");

    const followUp = t.sentOf("send-email")[1];
    expect(await t.app.result(followUp.id).state()).toBe("PENDING");
    await t.clock.advance("1d");
    expect(await t.app.result(followUp.id).get()).toBe("sent 'How is it going?' to ada@example.com");
  });

  it("retries a failing mail server every ten minutes", async () => {
    let calls = 0;
    const stub = t.stub(t.tasks.sendEmail, (to, subject) => {
      if (++calls < 3) throw new Error("mail server down");
      return `sent '${subject}' to ${to}`;
    });
    const result = await t.tasks.sendEmail.delay("bob@example.com", "Hello");
    await t.clock.advance("20m");
    expect(await result.get()).toBe("sent 'Hello' to bob@example.com");
    expect(stub.calls).toHaveLength(3);
  });
});
