// The e-mail channel of failure notifications: each notice sent as a mail through an SMTP
// server (nodemailer, loaded on first use).
import type { Transporter } from "nodemailer";
import { summaryOf, textOf, type FailureNotice, type NotificationChannel } from "./failure-notice.ts";

/**
 * An SMTP server to send through.
 *
 * @example
 * const smtp: SmtpServerOptions = { host: "smtp.example.com", port: 587, auth: { user: "alerts", pass: process.env.SMTP_PASSWORD! } };
 */
export interface SmtpServerOptions {
  readonly host: string;
  readonly port?: number;
  /** TLS from the start (port 465). Default false: STARTTLS when the server offers it. */
  readonly secure?: boolean;
  /** Do not upgrade with STARTTLS even if offered (a local test server). */
  readonly ignoreTLS?: boolean;
  readonly auth?: { readonly user: string; readonly pass: string };
}

/**
 * Where failure e-mails go and through which server.
 *
 * @example
 * emailChannel({ smtp: "smtps://alerts:pw@smtp.example.com", from: "celerity@example.com", to: ["ops@example.com"] });
 */
export interface EmailChannelOptions {
  /** The SMTP server: a url (`smtp://user:pass@host:587`, `smtps://…`) or its options. */
  readonly smtp: string | SmtpServerOptions;
  readonly from: string;
  readonly to: string | readonly string[];
  /** Prefix of every subject. Default "[celerity]". */
  readonly subjectPrefix?: string;
}

/**
 * Failure notifications by e-mail over SMTP (through nodemailer): the
 * subject says which task failed and why, the body has the task id, the
 * worker, the time, the stack and how many failures like it were held back.
 *
 * @example
 * notifyFailures(app, { channels: [emailChannel({ smtp: "smtp://127.0.0.1:2525", from: "celerity@example.com", to: "ops@example.com" })] });
 */
export const emailChannel = (options: EmailChannelOptions): NotificationChannel => {
  if (typeof options.from !== "string" || options.from.length === 0)
    throw new TypeError("emailChannel: 'from' must be an address");
  const to = typeof options.to === "string" ? [options.to] : [...options.to];
  if (to.length === 0 || to.some((address) => typeof address !== "string" || address.length === 0))
    throw new TypeError("emailChannel: 'to' must name at least one address");
  const prefix = options.subjectPrefix ?? "[celerity]";
  // Loaded on the first notice: an app that never sends one does not pay for the SMTP client at start-up.
  let transport: Promise<Transporter> | undefined;
  const connect = () =>
    (transport ??= import("nodemailer").then(({ default: nodemailer }) =>
      nodemailer.createTransport(options.smtp as never),
    ));
  return {
    name: `email to ${to.join(", ")}`,
    async send(notice: FailureNotice) {
      const more = notice.suppressed > 0 ? ` (+${notice.suppressed} more)` : "";
      await (await connect()).sendMail({
        from: options.from,
        to,
        subject: `${prefix} ${summaryOf(notice)}${more}`,
        text: textOf(notice),
      });
    },
    async close() {
      if (transport !== undefined) (await transport).close();
    },
  };
};
