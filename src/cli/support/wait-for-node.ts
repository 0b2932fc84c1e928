// A worker's or beat's wait for its broker node to accept connections: retried, reported
// while it lasts, and ended by a NodeUnreachableError after the time allowed.
import { connect } from "node:net";
import { parseNodeUrl } from "../../../broker/node/client/node-client.ts";

/** No broker node answered at `url` within the time allowed. */
export class NodeUnreachableError extends Error {
  override readonly name = "NodeUnreachableError";
  constructor(
    readonly url: string,
    readonly waitedMs: number,
    readonly lastError: string,
  ) {
    super(
      `no broker node at ${url} after ${Math.round(waitedMs / 1000)} s (last attempt: ${lastError}); ` +
        "start one with `celerity broker`, or check --broker and --connect-timeout",
    );
  }
}

export interface WaitForNodeOptions {
  /** Give up after this long; 0 waits for ever. */
  readonly timeoutMs: number;
  /** Told when the first attempt fails and every `reportEveryMs` after it, so waiting is never silent. */
  readonly log: (message: string) => void;
  readonly reportEveryMs?: number;
}

/**
 * Wait until the node at `url` accepts TCP connections, retrying with
 * backoff (100 ms doubling to 2 s). Resolves at once when it is up; rejects
 * with NodeUnreachableError after `timeoutMs`.
 */
export const waitForNode = async (
  url: string,
  { timeoutMs, log, reportEveryMs = 5_000 }: WaitForNodeOptions,
): Promise<void> => {
  const { host, port } = parseNodeUrl(url);
  const started = Date.now();
  let lastReport = 0;
  for (let attempt = 0; ; attempt++) {
    const failure = await tryConnect(host, port);
    if (failure === undefined) {
      if (attempt > 0) log(`reached the broker node at ${url}`);
      return;
    }
    const waited = Date.now() - started;
    if (timeoutMs > 0 && waited >= timeoutMs) throw new NodeUnreachableError(url, waited, failure);
    if (attempt === 0 || Date.now() - lastReport >= reportEveryMs) {
      lastReport = Date.now();
      const limit =
        timeoutMs > 0 ? `giving up ${Math.round((timeoutMs - waited) / 1000)} s from now` : "without a time limit";
      log(`waiting for the broker node at ${url} (${failure}); retrying, ${limit}`);
    }
    const delay = Math.min(2_000, 100 * 2 ** attempt);
    await new Promise((resolve) =>
      setTimeout(resolve, timeoutMs > 0 ? Math.min(delay, Math.max(0, timeoutMs - waited)) : delay),
    );
  }
};

/** Resolves to undefined once connected (the probe is closed at once), or to the reason it failed. */
const tryConnect = (host: string, port: number): Promise<string | undefined> =>
  new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve("no answer within 2 s");
    });
    socket.once("connect", () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once("error", (error) => resolve(error.message));
  });
