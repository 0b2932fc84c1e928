// The HMAC signature an HTTP task puts on its requests, and its check on the
// receiving side. The header reads `t=<epoch ms>,v1=<hex>`, where the hex is
// HMAC-SHA256 under the shared secret of `<t>.<body>`: the time is signed
// with the body, so a captured request cannot be replayed once it is older
// than the receiver's tolerance.
import { createHmac, timingSafeEqual } from "node:crypto";
import { Data } from "effect";

/**
 * The header carrying the signature.
 *
 * @example
 * const header = request.headers[SIGNATURE_HEADER]; // "t=1700000000000,v1=9f2c…"
 */
export const SIGNATURE_HEADER = "x-celerity-signature";

/**
 * How old a signed request may be by default when it is checked: five minutes.
 *
 * @example
 * verifyHttpSignature({ secret, header, body, toleranceMs: DEFAULT_SIGNATURE_TOLERANCE_MS / 5 }); // one minute
 */
export const DEFAULT_SIGNATURE_TOLERANCE_MS = 5 * 60 * 1_000;

const digest = (secret: string | Uint8Array, at: number, body: string | Uint8Array): Buffer =>
  createHmac("sha256", secret).update(`${at}.`).update(body).digest();

/**
 * The signature header's value for `body` sent at `at`.
 *
 * @example
 * const header = signHttpBody("s3cret", JSON.stringify({ ok: true }), Date.now()); // "t=1700000000000,v1=9f2c…"
 */
export const signHttpBody = (secret: string | Uint8Array, body: string | Uint8Array, at: number): string =>
  `t=${at},v1=${digest(secret, at, body).toString("hex")}`;

/**
 * A request's signature did not verify; `reason` says which check failed.
 *
 * @example
 * try { verifyHttpSignature({ secret, header, body }); } catch (error) { if (error instanceof HttpSignatureError) response.statusCode = 401; }
 */
export class HttpSignatureError extends Data.TaggedError("HttpSignatureError")<{
  readonly reason: "missing" | "malformed" | "expired" | "mismatch";
  readonly detail: string;
}> {
  override get message(): string {
    return `HTTP request signature rejected (${this.reason}): ${this.detail}`;
  }
}

/**
 * What `verifyHttpSignature` checks.
 *
 * @example
 * verifyHttpSignature({ secret: process.env.HOOK_SECRET!, header: request.headers["x-celerity-signature"], body: rawBody });
 */
export interface HttpSignatureCheck {
  readonly secret: string | Uint8Array;
  /** The `x-celerity-signature` header as received (undefined if absent). */
  readonly header: string | readonly string[] | undefined;
  /** The request's body exactly as received, before any parsing. */
  readonly body: string | Uint8Array;
  /** Oldest (and furthest in the future) a signature may be, in ms. Default five minutes. */
  readonly toleranceMs?: number;
  readonly now?: number;
}

/**
 * Check, on the receiving side, that a request came from an HTTP task holding
 * the shared secret, and is recent; throws an HttpSignatureError otherwise.
 * The comparison takes the same time whatever the bytes.
 *
 * @example
 * import { createServer } from "node:http";
 * createServer(async (request, response) => {
 *   const chunks: Buffer[] = [];
 *   for await (const chunk of request) chunks.push(chunk);
 *   const body = Buffer.concat(chunks);
 *   verifyHttpSignature({ secret: "s3cret", header: request.headers["x-celerity-signature"], body });
 *   response.end(JSON.stringify({ ok: true }));
 * });
 */
export const verifyHttpSignature = (check: HttpSignatureCheck): void => {
  const header = Array.isArray(check.header) ? check.header[0] : check.header;
  if (typeof header !== "string" || header.length === 0)
    throw new HttpSignatureError({ reason: "missing", detail: `no ${SIGNATURE_HEADER} header` });
  const match = /^t=(\d{1,16}),v1=([0-9a-f]{64})$/.exec(header.trim());
  if (match === null)
    throw new HttpSignatureError({
      reason: "malformed",
      detail: `expected 't=<epoch ms>,v1=<64 hex digits>', got '${header.slice(0, 100)}'`,
    });
  const at = Number(match[1]);
  const tolerance = check.toleranceMs ?? DEFAULT_SIGNATURE_TOLERANCE_MS;
  const now = check.now ?? Date.now();
  if (Math.abs(now - at) > tolerance) {
    throw new HttpSignatureError({
      reason: "expired",
      detail: `signed at ${new Date(at).toISOString()}, more than ${tolerance} ms from now`,
    });
  }
  const expected = digest(check.secret, at, check.body);
  if (!timingSafeEqual(expected, Buffer.from(match[2], "hex"))) {
    throw new HttpSignatureError({ reason: "mismatch", detail: "the body or the secret differs from what was signed" });
  }
};
