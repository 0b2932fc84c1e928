/**
 * What one task costs in CPU on each side of a peers-bench run: the producer
 * (this process), the worker (its own process, asked over IPC) and, for a
 * system on Redis, the Redis server (its INFO cpu counters), so a rate can
 * be read as "which process runs out of CPU first" and two systems on the
 * same Redis compared by what each asks of it.
 */
import { redisCommand, REDIS } from "./reachable.ts";

/** CPU microseconds used so far, by side; undefined where a side cannot be read. */
export interface CpuReading {
  readonly producer: number;
  readonly worker: number | undefined;
  readonly redis: number | undefined;
}

/** The Redis server's CPU time so far (user + system, µs) from INFO cpu; undefined if Redis does not answer. */
export const redisCpuMicros = async (): Promise<number | undefined> => {
  const reply = await redisCommand(REDIS.host, REDIS.port, "INFO cpu").catch(() => undefined);
  if (reply === undefined) return undefined;
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(reply)?.[1] ?? Number.NaN);
  const seconds = field("used_cpu_user") + field("used_cpu_sys");
  return Number.isFinite(seconds) ? Math.round(seconds * 1e6) : undefined;
};

/** Read every side's CPU time now. */
export const readCpu = async (
  workerCpu: (() => Promise<number>) | undefined,
  onRedis: boolean,
): Promise<CpuReading> => {
  const [worker, redis] = await Promise.all([workerCpu?.(), onRedis ? redisCpuMicros() : undefined]);
  const { user, system } = process.cpuUsage();
  return { producer: user + system, worker, redis };
};

/** One line per side: CPU µs per task between two readings, and the total. */
export const cpuPerTask = (before: CpuReading, after: CpuReading, tasks: number): string[] => {
  const sides: [string, number | undefined][] = [
    ["producer", after.producer - before.producer],
    ["worker", after.worker === undefined || before.worker === undefined ? undefined : after.worker - before.worker],
    ["redis-server", after.redis === undefined || before.redis === undefined ? undefined : after.redis - before.redis],
  ];
  let total = 0;
  const lines: string[] = [];
  for (const [side, micros] of sides) {
    if (micros === undefined) continue;
    total += micros;
    lines.push(`  ${side.padEnd(13)} ${(micros / tasks).toFixed(1).padStart(7)} µs CPU a task`);
  }
  lines.push(`  ${"all".padEnd(13)} ${(total / tasks).toFixed(1).padStart(7)} µs CPU a task`);
  return lines;
};
