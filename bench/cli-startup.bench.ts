/**
 * How long the `celerity` binary takes to start and answer, compiled
 * (dist/src/bin.js, what the installed package runs) against the sources
 * run through tsx (src/cli.js, what the binary ran before the package was
 * compiled). Each command runs in a fresh process; the two forms alternate,
 * so load from elsewhere falls on both alike. Reports the median with min and
 * max, and compiled / sources. Builds dist/ first if it is missing.
 *
 *   npm run bench:startup
 *   npm run bench:startup -- --runs 41
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({ options: { runs: { type: "string", default: "21" } } });
const runs = Number(opts.runs);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const COMPILED = join(ROOT, "dist", "src", "bin.js");
const SOURCES = join(ROOT, "src", "cli.js");
if (!existsSync(COMPILED)) spawnSync(process.execPath, [join(ROOT, "scripts", "build.mjs")], { stdio: "inherit" });

const scratch = mkdtempSync(join(tmpdir(), "celerity-startup-"));
const workflow = join(scratch, "workflow.mjs");
// A JavaScript workflow importing the app API by path: one task sent and awaited on the embedded broker.
const entry = (compiled: boolean) => (compiled ? join(ROOT, "dist", "src", "index.js") : join(ROOT, "src", "index.ts"));
const writeWorkflow = (compiled: boolean) =>
  writeFileSync(
    workflow,
    `import { createApp } from ${JSON.stringify(entry(compiled))};\n` +
      `const app = createApp();\nconst add = app.task("add", (x, y) => x + y);\nawait app.worker().start();\n` +
      `await (await add.delay(1, 2)).get({ timeout: 5_000 });\nawait app.close();\n`,
  );

const commands: Record<string, string[]> = {
  "--help": ["--help"],
  "worker --help": ["worker", "--help"],
  "broker --help": ["broker", "--help"],
  "run workflow.mjs (one task)": ["run", workflow],
};

const timeOnce = (script: string, args: string[]): number => {
  const started = process.hrtime.bigint();
  const child = spawnSync(process.execPath, [script, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8",
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (child.status !== 0) throw new Error(`${script} ${args.join(" ")} exited ${child.status}: ${child.stderr}`);
  return ms;
};

const stats = (times: number[]) => {
  const sorted = [...times].sort((a, b) => a - b);
  return { median: sorted[sorted.length >> 1], min: sorted[0], max: sorted[sorted.length - 1] };
};
const ms = (value: number) => value.toFixed(0);

const load = loadavg()[0];
const rows: Record<string, { compiled: ReturnType<typeof stats>; sources: ReturnType<typeof stats>; ratio: number }> =
  {};
try {
  for (const [name, args] of Object.entries(commands)) {
    const compiled: number[] = [];
    const sources: number[] = [];
    for (let i = 0; i < runs; i++) {
      writeWorkflow(true);
      compiled.push(timeOnce(COMPILED, args));
      writeWorkflow(false);
      sources.push(timeOnce(SOURCES, args));
    }
    const row = { compiled: stats(compiled), sources: stats(sources), ratio: 0 };
    row.ratio = row.compiled.median / row.sources.median;
    rows[name] = row;
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

console.log(
  `celerity start-up, ${runs} runs each, ms: median (min–max); load average ${load.toFixed(1)} at the start\n`,
);
console.log("| command | compiled (dist/) | sources through tsx | compiled / sources |\n|---|---|---|---|");
for (const [name, { compiled, sources, ratio }] of Object.entries(rows)) {
  console.log(
    `| ${name} | ${ms(compiled.median)} (${ms(compiled.min)}–${ms(compiled.max)}) | ${ms(sources.median)} (${ms(sources.min)}–${ms(sources.max)}) | ${(ratio * 100).toFixed(0)}% |`,
  );
}
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
const file = new URL(`./results/cli-startup-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, import.meta.url);
writeFileSync(file, JSON.stringify({ runs, loadAverage: load, rows }, null, 2));
console.log(`\nwrote ${fileURLToPath(file)}`);
