// Errors of message signing. A SignatureError is what a worker records for a
// message it refused to run; a SigningConfigError is a setup mistake (a key
// file that is missing, malformed or readable by others, a worker with
// nothing to trust), raised before anything is sent or consumed.
import { Data } from "effect";

/**
 * A delivered message was refused: no signature, a bad one, an untrusted key, a replay, or outside the time window.
 *
 * @example
 * // a worker records it as the refused task's failure:
 * await result.get().catch((error) => error instanceof RemoteTaskError && error.remote.name === "SignatureError");
 */
export class SignatureError extends Data.TaggedError("SignatureError")<{
  readonly id: string;
  readonly task: string;
  /** The key id the message names, or "(none)". */
  readonly keyId: string;
  readonly reason: string;
}> {
  override get message(): string {
    return refusalMessage(this.id, this.task, this.keyId, this.reason);
  }
}

/** A SignatureError's message, without making the error (and its stack) on a refusal's path. */
export const refusalMessage = (id: string, task: string, keyId: string, reason: string): string =>
  `message ${id} (task '${task}', key ${keyId}) was refused and not run: ${reason}`;

/**
 * The signing options cannot be used as given.
 *
 * @example
 * createApp({ signing: { key: "./missing.secret" } }); // throws SigningConfigError: signing: cannot read ...
 */
export class SigningConfigError extends Data.TaggedError("SigningConfigError")<{
  readonly reason: string;
}> {
  override get message(): string {
    return `signing: ${this.reason}`;
  }
}
