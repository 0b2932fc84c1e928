// A worker process's answer to SIGTERM and SIGINT: a warm shutdown on the first signal, a
// cold one (running tasks aborted and requeued) on the second.
import type { Worker } from "../../runtime/worker/worker.ts";

/**
 * A worker process's graceful lifecycle. The first SIGTERM or SIGINT is a
 * warm shutdown: stop consuming, let running tasks finish for up to
 * `timeoutMs`, give every held message back. A second signal is a cold
 * shutdown: abort the running tasks at once (a pool stops their threads or
 * children) and requeue their messages. Resolves once the worker stopped.
 */
export const stopOnSignals = (worker: Worker, timeoutMs: number, log: (line: string) => void): Promise<void> =>
  new Promise((done, fail) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        const { running } = worker.stats();
        log(
          `celerity worker ${worker.name}: ${signal}: warm shutdown: no new tasks; waiting up to ${timeoutMs} ms for ${running} running (send SIGTERM or SIGINT again to abort them now)`,
        );
        worker.stop({ timeout: timeoutMs }).then(
          () => {
            process.off("SIGINT", onSignal);
            process.off("SIGTERM", onSignal);
            done();
          },
          (error: unknown) => fail(error),
        );
        return;
      }
      log(
        `celerity worker ${worker.name}: ${signal}: cold shutdown: aborting ${worker.stats().running} running tasks; their messages go back to the queue`,
      );
      void worker.stop({ timeout: 0 });
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
