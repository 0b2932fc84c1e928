/**
 * Cleanup for tests that start many things (processes, nodes, apps, proxies,
 * temporary directories): each is registered as it starts, and all are
 * released in reverse order when the scope closes, each even if an earlier
 * cleanup failed, and also when the test's assertions failed first.
 *
 * @example
 * const scope = new Scope();
 * try {
 *   const broker = celerity("broker", ["broker", "--port", "0"]);
 *   scope.defer(() => broker.kill());
 * } finally {
 *   await scope.close();
 * }
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export class Scope {
  private readonly cleanups: (() => unknown)[] = [];

  /** Run `cleanup` when the scope closes (the last deferred runs first). */
  defer(cleanup: () => unknown): void {
    this.cleanups.push(cleanup);
  }

  /** A new empty directory, removed with everything in it when the scope closes. */
  tempDir(prefix = "celerity-test-"): string {
    const path = mkdtempSync(join(tmpdir(), prefix));
    this.defer(() => rmSync(path, { recursive: true, force: true }));
    return path;
  }

  /** Run every cleanup, last deferred first; the failures of any are thrown together at the end. */
  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const cleanup of this.cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, "cleanup failed");
  }
}
