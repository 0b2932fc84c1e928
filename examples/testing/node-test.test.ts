// celerity/testing under node:test: `node --import tsx --test examples/testing/node-test.test.ts`
// (In a project of your own the import is "celerity/testing"; here it is the repository's source.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { createTestApp } from "../../src/testing.ts";
import { defineTasks } from "./tasks.ts";

test("signup sends a welcome now and a follow-up a day later", async (c) => {
  const t = await createTestApp({ tasks: defineTasks });
  c.after(() => t.close());
  const { signup, sendEmail } = t.tasks;

  await signup.delay("ada@example.com");
  await t.drain();
  t.assertSent(sendEmail, ["ada@example.com", "Welcome"]);
  const followUp = t.assertSent(sendEmail, ["ada@example.com", "How is it going?"]);
  assert.equal(followUp.eta! - followUp.sentAt, 24 * 60 * 60_000);
  assert.equal(await t.app.result(followUp.id).state(), "PENDING");

  await t.clock.advance("1d");
  assert.equal(await t.app.result(followUp.id).get(), "sent 'How is it going?' to ada@example.com");
});

test("a failing mail server is retried every ten minutes", async (c) => {
  const t = await createTestApp({ tasks: defineTasks });
  c.after(() => t.close());
  let calls = 0;
  const stub = t.stub(t.tasks.sendEmail, (to, subject) => {
    if (++calls < 3) throw new Error("mail server down");
    return `sent '${subject}' to ${to}`;
  });

  const result = await t.tasks.sendEmail.delay("bob@example.com", "Hello");
  await t.clock.advance("20m");
  assert.equal(await result.get(), "sent 'Hello' to bob@example.com");
  assert.equal(stub.calls.length, 3);
});

test("eager mode runs the task, and the tasks it sends, before delay resolves", async (c) => {
  const t = await createTestApp({ tasks: defineTasks, eager: true });
  c.after(() => t.close());
  const result = await t.tasks.signup.delay("eve@example.com");
  assert.equal(await result.get(), "eve@example.com");
  assert.deepEqual(
    t.sentOf("send-email").map((sent) => sent.args[1]),
    ["Welcome", "How is it going?"],
  );
});
