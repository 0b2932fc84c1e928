// The messages between a worker and one of its pool's threads or children.
// The same for both kinds: a thread gets them by postMessage, a child process
// over its IPC channel with the "advanced" (structured clone) serialization,
// so byte arrays cross as bytes.
import type { CrossingError } from "./crossing-error.ts";

/** Worker to child. */
export type ToChild =
  | { readonly type: "init"; readonly appModule: string; readonly worker: string }
  | {
      readonly type: "run";
      readonly call: number;
      readonly id: string;
      readonly task: string;
      /** The task a built-in map / starmap applies. */
      readonly target?: string;
      readonly retries: number;
      /**
       * The message body as the transport delivered it (msgpack `[args]` or
       * `[args, options]`): the child decodes the arguments itself, so they
       * are never encoded a second time to cross.
       */
      readonly body: Uint8Array;
      readonly softTimeLimit?: number;
      /** Encode the value (with the app's codec) for the result store; false when the result is ignored. */
      readonly encode: boolean;
    }
  | { readonly type: "exit" };

/** Child to worker. */
export type FromChild =
  | { readonly type: "ready"; readonly tasks: readonly string[] }
  | { readonly type: "load-failed"; readonly reason: string }
  | {
      readonly type: "done";
      readonly call: number;
      readonly ok: true;
      /** The value encoded with the app's codec: stored as it is, and decoded by the worker only for a workflow's next step. */
      readonly encoded?: Uint8Array;
      /** Bytes in use after the task: the thread's V8 heap, or the child's resident set. */
      readonly memory: number;
    }
  | {
      readonly type: "done";
      readonly call: number;
      readonly ok: false;
      readonly error: CrossingError;
      readonly memory: number;
    }
  /** A running task's `this.progress(...)`, checked and encoded in the child; the worker records it. */
  | {
      readonly type: "progress";
      readonly id: string;
      readonly task: string;
      readonly retries: number;
      readonly info: Uint8Array;
    };

/** Set in a pool's thread or child while it loads the app, so `createApp` there opens no embedded broker of its own. */
export const POOL_CHILD_ENV = "CELERITY_POOL_CHILD";
