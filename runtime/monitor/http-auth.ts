/**
 * Who may use the HTTP API: a bearer token, a user and password (HTTP basic
 * authentication), or either. Credentials are compared in constant time.
 * A refused request gets 401 with a body saying what was expected.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { HttpApiError } from "./http-api-errors.ts";

/**
 * The credentials the API accepts; without any, it accepts every request
 * (fine on loopback, or behind your own framework's authentication).
 *
 * @example
 * const auth: HttpAuth = { token: process.env.MONITOR_TOKEN, basic: { username: "ops", password: process.env.MONITOR_PASSWORD ?? "" } };
 */
export interface HttpAuth {
  /** Accept `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** Accept `Authorization: Basic <base64 of username:password>`. */
  readonly basic?: { readonly username: string; readonly password: string };
}

const digest = (text: string): Buffer => createHash("sha256").update(text).digest();

const sameSecret = (given: string, expected: string): boolean => timingSafeEqual(digest(given), digest(expected));

/** Whether `auth` asks for any credential. */
export const requiresAuth = (auth: HttpAuth | undefined): boolean =>
  auth !== undefined && (auth.token !== undefined || auth.basic !== undefined);

/** Check `auth`'s credentials are non-empty; throws a RangeError naming the empty one. */
export const checkAuthOptions = (auth: HttpAuth | undefined): void => {
  if (auth?.token !== undefined && auth.token.length === 0) throw new RangeError("auth.token is empty");
  if (auth?.basic !== undefined && (auth.basic.username.length === 0 || auth.basic.password.length === 0))
    throw new RangeError("auth.basic needs a non-empty username and password");
};

/** The challenge headers a 401 carries, for the schemes `auth` accepts. */
export const challengeOf = (auth: HttpAuth): Record<string, string> => {
  const schemes = [
    ...(auth.token !== undefined ? ['Bearer realm="celerity"'] : []),
    ...(auth.basic !== undefined ? ['Basic realm="celerity", charset="UTF-8"'] : []),
  ];
  return { "www-authenticate": schemes.join(", ") };
};

/** Throws a 401 HttpApiError unless `request` carries a credential `auth` accepts. */
export const authenticate = (request: Request, auth: HttpAuth | undefined): void => {
  if (auth === undefined || !requiresAuth(auth)) return;
  const expected = [
    ...(auth.token !== undefined ? ["a bearer token (Authorization: Bearer <token>)"] : []),
    ...(auth.basic !== undefined ? ["a user and password (HTTP basic authentication)"] : []),
  ].join(" or ");
  const header = request.headers.get("authorization");
  if (header === null)
    throw new HttpApiError({ status: 401, code: "unauthorized", reason: `authentication required: send ${expected}` });
  const [scheme = "", credential = ""] = header.trim().split(/\s+/, 2);
  if (scheme.toLowerCase() === "bearer" && auth.token !== undefined) {
    if (sameSecret(credential, auth.token)) return;
    throw new HttpApiError({ status: 401, code: "unauthorized", reason: "the bearer token is not valid" });
  }
  if (scheme.toLowerCase() === "basic" && auth.basic !== undefined) {
    const decoded = Buffer.from(credential, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    const username = colon < 0 ? decoded : decoded.slice(0, colon);
    const password = colon < 0 ? "" : decoded.slice(colon + 1);
    // Both compared, whatever the first gives, so the time taken tells nothing.
    const userMatches = sameSecret(username, auth.basic.username);
    const passwordMatches = sameSecret(password, auth.basic.password);
    if (userMatches && passwordMatches) return;
    throw new HttpApiError({ status: 401, code: "unauthorized", reason: "the user name or password is not valid" });
  }
  throw new HttpApiError({
    status: 401,
    code: "unauthorized",
    reason: `the '${scheme}' authorization scheme is not accepted: send ${expected}`,
  });
};
