// The webhook channel of failure notifications: each notice POSTed as JSON to a url,
// signed like an HTTP task's requests when given a secret.
import { SIGNATURE_HEADER, signHttpBody } from "../http/http-signature.ts";
import type { FailureNotice, NotificationChannel } from "./failure-notice.ts";

/**
 * Where failure webhooks go.
 *
 * @example
 * webhookChannel({ url: "https://hooks.example.com/celerity", secret: process.env.HOOK_SECRET! });
 */
export interface WebhookChannelOptions {
  readonly url: string;
  /** Sign each POST with HMAC-SHA256 (header x-celerity-signature; check it with verifyHttpSignature). */
  readonly secret?: string | Uint8Array;
  /** Give up on a POST after this many ms. Default 10,000. */
  readonly timeout?: number;
}

/**
 * Failure notifications as a JSON POST, `{ type: "task-failed", id, task,
 * error, worker, at, suppressed }`, signed like an HTTP task's requests. A
 * status other than 2xx counts as not delivered (and is logged).
 *
 * @example
 * notifyFailures(app, { channels: [webhookChannel({ url: "https://hooks.example.com/celerity", secret: "s3cret" })] });
 */
export const webhookChannel = (options: WebhookChannelOptions): NotificationChannel => {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TypeError(`webhookChannel: '${String(options.url)}' is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new TypeError(`webhookChannel: only http: and https: URLs, not ${url.protocol}`);
  const timeout = options.timeout ?? 10_000;
  return {
    name: `webhook ${url.origin}${url.pathname}`,
    async send(notice: FailureNotice) {
      const body = JSON.stringify({ type: "task-failed", ...notice });
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "user-agent": "celerity-notifications",
      };
      if (options.secret !== undefined) headers[SIGNATURE_HEADER] = signHttpBody(options.secret, body, Date.now());
      const response = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(timeout) });
      await response.body?.cancel().catch(() => {});
      if (!response.ok) throw new Error(`${url.href} answered ${response.status} ${response.statusText}`.trim());
    },
  };
};
