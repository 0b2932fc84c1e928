// One node per data directory: a LOCK file holding the owner's pid. A lock left by a
// process that no longer exists (a node killed with SIGKILL) is taken over; one held by
// a live process refuses the second node.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Data } from "effect";

/**
 * A live process already holds the data directory's lock: a second node there would
 * be a second writer, and two writers would corrupt the log.
 *
 * @example
 * const lock = lockDataDir("./data"); // throws DataDirLockedError if a live node holds it
 * lock.release();
 */
export class DataDirLockedError extends Data.TaggedError("DataDirLockedError")<{
  readonly dir: string;
  readonly pid: number;
}> {
  override get message(): string {
    return `data directory ${this.dir} is in use by process ${this.pid}: run one node per data directory`;
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
};

export const lockDataDir = (dir: string): { release(): void } => {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "LOCK");
  try {
    writeFileSync(path, String(process.pid), { flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const holder = Number(readFileSync(path, "utf8").trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder))
      throw new DataDirLockedError({ dir, pid: holder });
    writeFileSync(path, String(process.pid));
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      rmSync(path, { force: true });
    },
  };
};
