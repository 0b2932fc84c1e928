// The tasks of an example app, written as a function of the app: production
// calls it with createApp(), tests with createTestApp({ tasks: defineTasks }).
import type { App } from "../../src/index.ts";

export interface Mailer {
  send(to: string, subject: string): Promise<void> | void;
}

export const defineTasks = (app: App) => {
  const sendEmail = app.task("send-email", (to: string, subject: string) => `sent '${subject}' to ${to}`, {
    retry: { max: 3, delay: 10 * 60_000 },
  });
  const signup = app.task("signup", async (email: string) => {
    await sendEmail.delay(email, "Welcome");
    await sendEmail.applyAsync([email, "How is it going?"], { countdown: 24 * 60 * 60_000 });
    return email;
  });
  return { signup, sendEmail };
};
