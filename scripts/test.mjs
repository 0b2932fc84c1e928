// Runs the whole suite: type check (including the DSL's type tests), lint and
// format check (Biome, biome.jsonc), then every
// *.test.ts under the source folders with node's built-in test runner, each
// test bounded in time (scripts/test-runner-args.mjs).
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { runnerArgs } from "./test-runner-args.mjs";

const roots = ["dsl", "broker", "runtime", "src", "property-tests", "tests"];
const files = [];
const walk = (dir) => {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path);
    else if (entry.endsWith(".test.ts")) files.push(path);
  }
};
roots.forEach(walk);
files.sort();

const run = (cmd, args) => spawnSync(cmd, args, { stdio: "inherit" }).status ?? 1;

const tsc = run("npx", ["tsc", "--noEmit", "-p", "."]);
if (tsc !== 0) {
  console.error("type check failed");
  process.exit(tsc);
}
const lint = run("npx", ["biome", "check", "."]);
if (lint !== 0) {
  console.error("lint or format check failed: `npm run format` applies the fixes Biome can make");
  process.exit(lint);
}
const only = process.argv.slice(2);
process.exit(run(process.execPath, runnerArgs(only.length ? only : files)));
