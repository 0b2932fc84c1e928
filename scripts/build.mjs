// Builds the package into dist/ (npm run build; run by npm pack and npm publish
// through "prepack"): the entries and everything they import, as ESM
// JavaScript with declarations and source maps.
import { spawnSync } from "node:child_process";
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });

const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
const build = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
if (build.status !== 0) {
  console.error("build: tsc failed");
  process.exit(build.status ?? 1);
}

// The monitor's page is plain files beside its module, read at run time: copied as they are.
cpSync(join(root, "runtime", "monitor", "dashboard"), join(dist, "runtime", "monitor", "dashboard"), {
  recursive: true,
});

// The compiler rewrites the sources' relative `.ts` specifiers to `.js` in the
// JavaScript only; declarations keep `.ts`. TypeScript accepts those, but other
// tools reading the declarations (editors, bundlers' type plugins) look for
// files that exist, so point them at the emitted `.js`/`.d.ts` pair.
const relativeTs = /((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']+?)\.ts(["'])/g;
let files = 0;
const walk = (dir) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else if (entry.name.endsWith(".d.ts")) {
      const text = readFileSync(path, "utf8");
      const rewritten = text.replace(relativeTs, "$1$2.js$3");
      if (rewritten !== text) writeFileSync(path, rewritten);
      files++;
    }
  }
};
walk(dist);
console.error(`build: dist/ holds ${files} declaration files`);
