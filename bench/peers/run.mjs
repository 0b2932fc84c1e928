// `npm run bench:peers`: installs the peers' libraries into bench/peers/node_modules
// (its own package and lock file, so celerity's own install stays lean) when they
// are missing, then runs the harness with the arguments given.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = fileURLToPath(new URL("../../", import.meta.url));
if (
  !existsSync(`${here}node_modules/bullmq/package.json`) ||
  !existsSync(`${here}node_modules/bee-queue/package.json`)
) {
  console.error("bench:peers: installing the peers' libraries (npm ci --prefix bench/peers)");
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const install = spawnSync(npm, ["ci", "--prefix", here, "--no-audit", "--no-fund"], { stdio: "inherit", cwd: root });
  if (install.status !== 0) {
    console.error("bench:peers: npm ci --prefix bench/peers failed");
    process.exit(install.status ?? 1);
  }
}
const run = spawnSync(process.execPath, ["--import", "tsx", `${here}peers.bench.ts`, ...process.argv.slice(2)], {
  stdio: "inherit",
  cwd: root,
});
process.exit(run.status ?? 1);
