/**
 * The top self-time functions of a V8 CPU profile (`node --cpu-prof`).
 *
 *   node --import tsx bench/node/profile-summary.ts <file.cpuprofile> [top]
 */
import { readFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ROOT } from "./processes.ts";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
    readonly columnNumber: number;
  };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTime {
  readonly fn: string;
  readonly where: string;
  readonly ms: number;
  /** Share of the samples that were not idle. */
  readonly percent: number;
  /** The caller it spent most of that time under. */
  readonly caller: string;
}

const shortUrl = (url: string): string => {
  if (url === "") return "";
  const path = url.startsWith("file://") ? fileURLToPath(url) : url;
  return path.startsWith(ROOT) ? relative(ROOT, path) : path.replace(/^.*node_modules\//, "node_modules/");
};

/** Self time per function (aggregated by name and place), busiest first; also the busy and idle totals in ms. */
export const selfTimes = (file: string): { top: SelfTime[]; busyMs: number; idleMs: number } => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node);
  const nameOf = (node: ProfileNode | undefined) => {
    if (node === undefined) return "(root)";
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    // Modules loaded through tsx are compiled onto few lines: the column tells functions apart.
    const where = url === "" ? "" : ` ${shortUrl(url)}:${lineNumber + 1}:${columnNumber + 1}`;
    return `${functionName === "" ? "(anonymous)" : functionName}${where}`;
  };
  const micros = new Map<string, { fn: string; where: string; us: number; callers: Map<string, number> }>();
  let idle = 0;
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = profile.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") {
      idle += dt;
      continue;
    }
    busy += dt;
    const where = url === "" ? "" : `${shortUrl(url)}:${lineNumber + 1}:${node.callFrame.columnNumber + 1}`;
    const fn = functionName === "" ? "(anonymous)" : functionName;
    const key = `${fn}\u0000${where}`;
    let entry = micros.get(key);
    if (entry === undefined) micros.set(key, (entry = { fn, where, us: 0, callers: new Map() }));
    entry.us += dt;
    const caller = nameOf(parents.get(node.id));
    entry.callers.set(caller, (entry.callers.get(caller) ?? 0) + dt);
  }
  const top = [...micros.values()]
    .sort((a, b) => b.us - a.us)
    .map(({ fn, where, us, callers }) => ({
      fn,
      where,
      ms: us / 1000,
      percent: busy === 0 ? 0 : (100 * us) / busy,
      caller: [...callers.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "",
    }));
  return { top, busyMs: busy / 1000, idleMs: idle / 1000 };
};

export const printSelfTimes = (label: string, file: string, count = 15): SelfTime[] => {
  const { top, busyMs, idleMs } = selfTimes(file);
  console.log(`\n${label}: ${file}\n  busy ${busyMs.toFixed(0)} ms, idle ${idleMs.toFixed(0)} ms; top self time:`);
  for (const entry of top.slice(0, count)) {
    console.log(
      `  ${entry.percent.toFixed(1).padStart(5)}%  ${entry.ms.toFixed(0).padStart(6)} ms  ${`${entry.fn} ${entry.where}`.padEnd(58)} <- ${entry.caller}`,
    );
  }
  return top.slice(0, count);
};

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const [file, count] = process.argv.slice(2);
  if (file === undefined) {
    console.error("usage: node --import tsx bench/node/profile-summary.ts <file.cpuprofile> [top]");
    process.exit(2);
  }
  printSelfTimes("profile", file, count === undefined ? 25 : Number(count));
}
