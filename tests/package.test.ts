/**
 * The package as a user gets it: packed with `npm pack` (which builds it),
 * installed from the tarball into a scratch project outside the repository,
 * then used there by plain JavaScript (ESM and CommonJS), type-checked by
 * TypeScript under both module resolutions a project may use, and run
 * through its `celerity` binary. The install is offline: the dependencies
 * come from the npm cache that `npm ci` filled, pinned by the repository's
 * own lockfile, and the type check uses the repository's TypeScript.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { WatchedProcess } from "./support/watched-process.ts";
import { scaled } from "./support/waits.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const FIXTURES = fileURLToPath(new URL("./fixtures/scratch-project/", import.meta.url));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const STEP_TIMEOUT_MS = scaled(60_000);
const PROCESS_TIMEOUT_MS = scaled(20_000);

let scratch = "";
let project = "";
let tarball = "";

/** Node in the scratch project, as `node <file>` there. */
const node = (file: string, ...args: string[]) =>
  run(process.execPath, [file, ...args], { cwd: project, timeout: PROCESS_TIMEOUT_MS });
const bin = () => join(project, "node_modules", ".bin", "celerity");
/** Where the toolkit's runner examples are copied in the scratch project. */
const RUNNER_EXAMPLES = "runner-examples";

/** `node <args>` in the scratch project to its end, with its output, without this runner's test context. */
const runInProject = async (name: string, args: readonly string[]) => {
  const { NODE_TEST_CONTEXT: _parent, ...env } = process.env;
  const child = new WatchedProcess(name, process.execPath, args, {
    cwd: project,
    env: { ...env, FORCE_COLOR: "0", NO_COLOR: "1", CI: "1" },
  });
  try {
    const { code } = await child.exit(STEP_TIMEOUT_MS);
    return { code, output: child.output };
  } finally {
    await child.kill();
  }
};

/** The test runners the toolkit's examples run under, installed beside the package as a user would. */
const RUNNERS = ["vitest", "jest", "@jest/globals", "@babel/preset-typescript"] as const;

type LockEntry = {
  dev?: boolean;
  devOptional?: boolean;
  peer?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
};

/**
 * The lockfile paths of `roots` and of everything they need, found as Node
 * resolves a dependency: from the package's own node_modules up to the top.
 * An optional dependency the lockfile has no entry for (another platform's
 * binary) is left out.
 */
const closureOf = (pinned: Record<string, LockEntry>, roots: readonly string[]): Set<string> => {
  const found = new Set<string>();
  const resolve = (from: string, name: string): string | undefined => {
    for (let base = from; ; ) {
      const candidate = `${base === "" ? "" : `${base}/`}node_modules/${name}`;
      if (pinned[candidate] !== undefined) return candidate;
      if (base === "") return undefined;
      const up = base.lastIndexOf("/node_modules/");
      base = up < 0 ? "" : base.slice(0, up);
    }
  };
  const visit = (path: string | undefined) => {
    if (path === undefined || found.has(path)) return;
    found.add(path);
    const entry = pinned[path];
    for (const name of Object.keys({
      ...entry.dependencies,
      ...entry.optionalDependencies,
      ...entry.peerDependencies,
    }))
      visit(resolve(path, name));
  };
  for (const root of roots) visit(resolve("", root));
  return found;
};

/**
 * The scratch project's lockfile: the tarball, plus every package the
 * repository's lockfile pins for it (its dependencies, Node's types, and the
 * test runners of the toolkit's examples with what they need), so
 * `npm ci --offline` finds each one in the cache by its integrity.
 */
const scratchLockfile = (tarballName: string): { manifest: object; lockfile: object } => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8"));
  const spec = `file:../${tarballName}`;
  const integrity = `sha512-${createHash("sha512")
    .update(readFileSync(join(scratch, tarballName)))
    .digest("base64")}`;
  const pinned = lock.packages as Record<string, LockEntry>;
  const versionOf = (name: string): string => (pinned[`node_modules/${name}`] as { version: string }).version;
  const dependencies = { celerity: spec, "@types/node": versionOf("@types/node") };
  const devDependencies = Object.fromEntries(RUNNERS.map((name) => [name, versionOf(name)]));
  const packages: Record<string, object> = {
    "": { name: "scratch", dependencies, devDependencies },
    "node_modules/celerity": {
      version: pkg.version,
      resolved: spec,
      integrity,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
      peerDependencies: pkg.peerDependencies,
      peerDependenciesMeta: pkg.peerDependenciesMeta,
    },
  };
  // Node's types and the runners, though the repository has them as development tools only.
  const tools = closureOf(pinned, ["@types/node", ...RUNNERS]);
  for (const [path, entry] of Object.entries(pinned)) {
    if (path === "" || ((entry.dev === true || entry.devOptional === true) && !tools.has(path))) continue;
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...kept } = entry;
    packages[path] = kept;
  }
  return {
    manifest: { name: "scratch", private: true, type: "module", dependencies, devDependencies },
    lockfile: { name: "scratch", lockfileVersion: 3, requires: true, packages },
  };
};

/**
 * The toolkit's vitest and jest examples (examples/testing/), copied into the
 * scratch project with their imports of the repository's sources turned into
 * imports of the installed package, as docs/testing.md tells a user to write them.
 */
const copyRunnerExamples = (into: string): void => {
  const examples = join(ROOT, "examples", "testing");
  mkdirSync(join(project, into));
  for (const file of ["tasks.ts", "vitest.test.ts", "jest.test.ts"]) {
    const source = readFileSync(join(examples, file), "utf8")
      .replaceAll('"../../src/testing.ts"', '"celerity/testing"')
      .replaceAll('"../../src/index.ts"', '"celerity"');
    assert.doesNotMatch(source, /\.\.\/\.\.\/src\//, `${file} imports the repository's sources another way`);
    writeFileSync(join(project, into, file), source);
  }
};

describe("the installed package", { timeout: scaled(180_000) }, () => {
  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), "celerity-package-"));
    const packed = await run("npm", ["pack", "--json", "--pack-destination", scratch], {
      cwd: ROOT,
      timeout: STEP_TIMEOUT_MS,
    });
    // The JSON report follows whatever the prepack build printed.
    tarball = (JSON.parse(packed.stdout.slice(packed.stdout.search(/^\[/m))) as { filename: string }[])[0].filename;
    project = join(scratch, "project");
    mkdirSync(project);
    cpSync(FIXTURES, project, { recursive: true });
    const { manifest, lockfile } = scratchLockfile(tarball);
    writeFileSync(join(project, "package.json"), JSON.stringify(manifest, null, 2));
    writeFileSync(join(project, "package-lock.json"), JSON.stringify(lockfile, null, 2));
    copyRunnerExamples(RUNNER_EXAMPLES);
    await run("npm", ["ci", "--offline", "--no-audit", "--no-fund"], { cwd: project, timeout: STEP_TIMEOUT_MS });
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it("ships compiled JavaScript, declarations and source maps, and no tests or sources", async () => {
    const { stdout } = await run("tar", ["-tzf", join(scratch, tarball)]);
    const files = stdout.split("\n").filter(Boolean);
    for (const entry of [
      "index",
      "node",
      "transport",
      "transport-conformance",
      "signing",
      "amqp",
      "testing",
      "metrics",
    ]) {
      for (const suffix of [".js", ".d.ts", ".js.map"])
        assert.ok(files.includes(`package/dist/src/${entry}${suffix}`), `missing dist/src/${entry}${suffix}`);
    }
    assert.ok(files.includes("package/dist/src/bin.js"));
    assert.ok(files.includes("package/dist/runtime/monitor/dashboard/monitor.js"), "the monitor's page ships");
    assert.deepEqual(
      files.filter((file) => /\.test\.|test-support|fixtures|bench|property-tests|(?<!\.d)\.ts$/.test(file)),
      [],
    );
    const kb = Math.round(statSync(join(scratch, tarball)).size / 1024);
    console.log(`package: ${tarball}, ${kb} kB, ${files.length} files`);
  });

  it("runs a plain ESM producer and worker on the embedded broker", async () => {
    const { stdout } = await node("embedded.mjs");
    assert.equal(stdout.trim(), "[4,16,[2,4],6]");
  });

  it("loads with require() from CommonJS, sub-path entries included", async () => {
    const { stdout } = await node("required.cjs");
    assert.deepEqual(JSON.parse(stdout), { sum: 6, caught: true, node: "function", codec: "function" });
  });

  for (const resolution of ["nodenext", "bundler"]) {
    it(`type-checks strictly under ${resolution} resolution, with the DSL's inference and its errors intact`, async () => {
      // inference.ts holds @ts-expect-error lines: a check that lost the inference fails on them as unused.
      const check = await run(process.execPath, [TSC, "-p", `tsconfig.${resolution}.json`], {
        cwd: project,
        timeout: STEP_TIMEOUT_MS,
      }).catch((error: { stdout?: string; stderr?: string }) =>
        assert.fail(`tsc failed:\n${error.stdout ?? ""}${error.stderr ?? ""}`),
      );
      assert.equal(check.stdout, "");
    });
  }

  it("runs the testing toolkit's tests under node:test, from celerity/testing", async () => {
    const { NODE_TEST_CONTEXT: _parent, ...env } = process.env;
    const { stdout } = await run(process.execPath, ["--test", "--test-reporter=spec", "testing.test.mjs"], {
      cwd: project,
      timeout: PROCESS_TIMEOUT_MS,
      env,
    });
    assert.match(stdout, /ℹ pass 2\b/, stdout);
    assert.match(stdout, /ℹ fail 0\b/, stdout);
  });

  it("runs the testing toolkit's vitest example under vitest 3, from celerity/testing", async () => {
    const { code, output } = await runInProject("vitest", [
      join("node_modules", "vitest", "vitest.mjs"),
      "run",
      `${RUNNER_EXAMPLES}/vitest.test.ts`,
    ]);
    assert.equal(code, 0, output);
    assert.match(output, /Tests\s+2 passed \(2\)/, output);
  });

  it("runs the testing toolkit's jest example under jest, from celerity/testing", async () => {
    // As docs/testing.md shows: TypeScript through babel-jest's TypeScript preset, ES modules through Node's VM modules.
    writeFileSync(
      join(project, "jest.config.mjs"),
      `export default ${JSON.stringify({
        testMatch: [`<rootDir>/${RUNNER_EXAMPLES}/jest.test.ts`],
        extensionsToTreatAsEsm: [".ts"],
        transform: {
          "\\.ts$": ["babel-jest", { presets: [["@babel/preset-typescript", { allowDeclareFields: true }]] }],
        },
        testEnvironment: "node",
      })};\n`,
    );
    const { code, output } = await runInProject("jest", [
      "--experimental-vm-modules",
      join("node_modules", "jest", "bin", "jest.js"),
      "-c",
      "jest.config.mjs",
    ]);
    assert.equal(code, 0, output);
    assert.match(output, /Tests:\s+2 passed, 2 total/, output);
  });

  it("answers npx celerity --help and --version", async () => {
    const { stdout } = await run("npx", ["--offline", "celerity", "--help"], {
      cwd: project,
      timeout: PROCESS_TIMEOUT_MS,
    });
    assert.match(stdout, /^celerity: a distributed task queue/);
    assert.match(stdout, /celerity worker --app <file>/);
    const version = await run("npx", ["--offline", "celerity", "--version"], {
      cwd: project,
      timeout: PROCESS_TIMEOUT_MS,
    });
    assert.equal(version.stdout.trim(), JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version);
  });

  it("runs a .mjs app's worker against celerity broker, fed by a .mjs producer", async (t) => {
    const broker = new WatchedProcess("broker", bin(), ["broker", "--port", "0"], { cwd: project });
    t.after(() => broker.kill());
    const [, url] = await broker.waitFor(/listening on (celerity:\/\/\S+)/, PROCESS_TIMEOUT_MS);
    const worker = new WatchedProcess(
      "worker",
      bin(),
      ["worker", "--app", "./tasks.mjs", "--broker", url, "--concurrency", "2"],
      { cwd: project },
    );
    t.after(() => worker.kill());
    await worker.waitFor(/consuming with concurrency 2/, PROCESS_TIMEOUT_MS);
    const { stdout } = await run(process.execPath, ["producer.mjs"], {
      cwd: project,
      timeout: PROCESS_TIMEOUT_MS,
      env: { ...process.env, CELERITY_BROKER_URL: url },
    });
    assert.equal(stdout.trim(), "[42,6]");
    assert.deepEqual(await worker.stop("SIGTERM", PROCESS_TIMEOUT_MS), { code: 0, signal: null });
    assert.deepEqual(await broker.stop("SIGTERM", PROCESS_TIMEOUT_MS), { code: 0, signal: null });
  });

  it("runs a TypeScript workflow with celerity run, and registers no TypeScript loader for JavaScript", async () => {
    const typescript = await run(bin(), ["run", "./workflow.ts", "a", "b"], {
      cwd: project,
      timeout: PROCESS_TIMEOUT_MS,
    });
    assert.equal(typescript.stdout.trim(), "total 6 from a,b");
    const javascript = await run(bin(), ["run", "./loader-free.mjs"], { cwd: project, timeout: PROCESS_TIMEOUT_MS });
    assert.equal(javascript.stdout.trim(), "typescript loader registered: false");
  });

  it("serves an app's Prometheus metrics from celerity/metrics", async () => {
    const { stdout } = await node("metrics.mjs");
    assert.deepEqual(JSON.parse(stdout), {
      status: 200,
      succeeded: 'celerity_tasks_total{task="add",state="succeeded"} 2',
    });
  });

  it("starts a durable broker node from code with public imports only, and keeps results across a restart", async () => {
    const { stdout } = await node("durable-node.mjs", join(scratch, "data"));
    assert.equal(stdout.trim(), "[4,4]");
  });
});
