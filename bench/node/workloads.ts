/**
 * The throughput workloads the TCP benches share (bench:node, bench:signing):
 * a producer process sends through an app connected to a node, and a worker
 * process runs the tasks of task-defs.ts.
 */
import { wallClock, type BenchTasks } from "./task-defs.ts";

/** Publishes awaited together (Promise.all), as in the dispatch bench. */
export const SEND_BATCH = 1_000;
export const GET_TIMEOUT = 300_000;

/** What a workload needs of a bench's fixture: the tasks, and how many counted ones were sent so far. */
export interface WorkloadFixture {
  readonly tasks: BenchTasks;
  sent: number;
}

export const rate = (count: number, ms: number): number => Math.round((count / ms) * 1000);

export const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

/** Wait until the worker has run every counted task sent so far. */
export const allRun = async (f: WorkloadFixture): Promise<void> => {
  await (await f.tasks.reached.delay(f.sent)).get({ timeout: GET_TIMEOUT });
};

/** Send `n` counted tasks in batches of SEND_BATCH confirms; tasks/s once the worker has run them all. */
export const fireAndForget = async (f: WorkloadFixture, task: BenchTasks["count"], n: number): Promise<number> => {
  const t0 = performance.now();
  for (let i = 0; i < n; i += SEND_BATCH) {
    const sends = [];
    for (let j = 0; j < SEND_BATCH && i + j < n; j++) sends.push(task.delay(i + j));
    await Promise.all(sends);
    f.sent += sends.length;
  }
  await allRun(f);
  return rate(n, performance.now() - t0);
};

/**
 * `senders` callers, each awaiting one send at a time (a web server's
 * handlers, say), `n` tasks in all; tasks/s once the worker has run them.
 * On a durable node every send waits for an fsync, which group commit shares
 * between the sends in flight.
 */
export const concurrentSenders = async (
  f: WorkloadFixture,
  task: BenchTasks["count"],
  senders: number,
  n: number,
): Promise<number> => {
  const t0 = performance.now();
  let next = 0;
  const sender = async () => {
    while (next < n) await task.delay(next++);
  };
  await Promise.all(Array.from({ length: senders }, sender));
  f.sent += n;
  await allRun(f);
  return rate(n, performance.now() - t0);
};

/** `n` tasks, SEND_BATCH at a time, each result awaited; tasks/s. */
export const withResults = async (f: WorkloadFixture, n: number): Promise<number> => {
  const t0 = performance.now();
  for (let i = 0; i < n; i += SEND_BATCH) {
    const sends = [];
    for (let j = 0; j < SEND_BATCH; j++)
      sends.push(f.tasks.add.delay(i, j).then((r) => r.get({ timeout: GET_TIMEOUT })));
    await Promise.all(sends);
  }
  return rate(n, performance.now() - t0);
};

/**
 * `total` stamp tasks at `perSecond` (paced by the clock, checked every
 * millisecond), each result awaited: the send-to-start and send-to-result
 * times in ms, each sorted.
 */
export const pacedLatencies = async (
  f: WorkloadFixture,
  perSecond: number,
  total: number,
): Promise<{ toStart: number[]; roundTrip: number[] }> => {
  const toStart: number[] = [];
  const roundTrip: number[] = [];
  const perMs = perSecond / 1000;
  const sends: Promise<void>[] = [];
  const t0 = performance.now();
  for (let sent = 0; sent < total; ) {
    const due = Math.min(total, Math.floor((performance.now() - t0) * perMs) + 1);
    for (; sent < due; sent++) {
      const sentAt = wallClock();
      sends.push(
        f.tasks.stamp
          .delay(sentAt)
          .then((r) => r.get({ timeout: GET_TIMEOUT }))
          .then((startedAt) => {
            roundTrip.push(wallClock() - sentAt);
            toStart.push(startedAt - sentAt);
          }),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(sends);
  toStart.sort((a, b) => a - b);
  roundTrip.sort((a, b) => a - b);
  return { toStart, roundTrip };
};
