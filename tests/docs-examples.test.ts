/**
 * Every TypeScript example in README.md and docs/ is type-checked against
 * the package's public entry points, and every example that needs nothing
 * but the embedded broker is run: a doc cannot drift from the code.
 *
 * How a page's examples are read:
 * - A block that imports `createApp` starts the page's context; a later
 *   block without such an import continues it: it is checked and run after
 *   the context's code (without its closing `await app.close()`), and what
 *   it declares joins the context.
 * - A block whose first line names a file (`// tasks.ts`) is written under
 *   that name, so another block can import it (`import { app } from "./tasks.ts"`).
 * - A fence written ```ts listing is a declaration for reading (an
 *   interface's shape), not code to check.
 * - Blocks that talk to a broker node (`celerity://`, `CELERITY_BROKER_URL`)
 *   or read the command line are type-checked only.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { scaled, within } from "./support/waits.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const work = join(root, ".tmp", "docs-examples");

interface Example {
  readonly page: string;
  readonly line: number;
  readonly file: string;
  readonly runnable: boolean;
}

const pages = (): string[] => [
  "README.md",
  ...readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
];

/** Examples that need a service, the network, files or arguments are type-checked only. */
const needsMoreThanTheEmbeddedBroker = (code: string): boolean =>
  /celerity:\/\/|CELERITY_BROKER_URL|amqp:\/\/|redis:\/\/|postgres:\/\/|process\.argv|node:net|readFileSync\(|\bfetch\(|\.\/keys\//.test(
    code,
  );

const withoutClose = (code: string): string => code.replace(/^await \w+\.close\(\);?\s*$/gm, "");

/** A page's context: the imports and code of its setup example, and the tasks later examples declared. */
interface Context {
  readonly imports: Map<string, Set<string>>;
  readonly setup: string;
  readonly tasks: string[];
}

const IMPORT = /^import (type )?\{([^}]*)\} from "([^"]+)";?\s*$/gm;

const addImports = (imports: Map<string, Set<string>>, code: string): string =>
  code.replace(IMPORT, (_line, typeOnly: string | undefined, names: string, module: string) => {
    const set = imports.get(module) ?? new Set<string>();
    for (const name of names
      .split(",")
      .map((n) => n.trim())
      .filter(Boolean))
      set.add(typeOnly ? `type ${name.replace(/^type /, "")}` : name);
    imports.set(module, set);
    return "";
  });

/** `const x = app.task(...)` statements, found by balancing the call's parentheses. */
const taskDeclarations = (code: string): { tasks: string[]; rest: string } => {
  const tasks: string[] = [];
  let rest = code;
  for (
    let match = /^const \w+ = app\.task\(/m.exec(rest);
    match !== null;
    match = /^const \w+ = app\.task\(/m.exec(rest)
  ) {
    let depth = 0;
    let i = match.index + match[0].length - 1;
    for (; i < rest.length; i++) {
      if (rest[i] === "(") depth++;
      else if (rest[i] === ")" && --depth === 0) break;
    }
    const semicolon = rest.indexOf(";", i);
    const endOf = semicolon === -1 ? i + 1 : semicolon + 1;
    tasks.push(rest.slice(match.index, endOf));
    rest = rest.slice(0, match.index) + rest.slice(endOf);
  }
  return { tasks, rest };
};

const importLines = (imports: Map<string, Set<string>>): string =>
  [...imports].map(([module, names]) => `import { ${[...names].join(", ")} } from "${module}";`).join("\n");

const extract = (): Example[] => {
  rmSync(work, { recursive: true, force: true });
  const examples: Example[] = [];
  for (const page of pages()) {
    const lines = readFileSync(join(root, page), "utf8").split("\n");
    const dir = join(work, page.replace(/[/.]/g, "_"));
    mkdirSync(dir, { recursive: true });
    let context: Context | undefined;
    for (let i = 0; i < lines.length; i++) {
      const fence = /^```(ts|typescript)(\s+listing)?\s*$/.exec(lines[i]);
      if (fence === null) continue;
      const start = i + 1;
      let end = start;
      while (end < lines.length && !lines[end].startsWith("```")) end++;
      i = end;
      if (fence[2] !== undefined) continue;
      const block = lines.slice(start, end).join("\n");
      const named = /^\/\/ ([\w.-]+\.ts)\b/.exec(block);
      let code = block;
      if (named === null && /^import .*\bcreateApp\b/m.test(block)) {
        const imports = new Map<string, Set<string>>();
        const setup = withoutClose(addImports(imports, block));
        context = { imports, setup, tasks: [] };
      } else if (named === null && context !== undefined) {
        const own = addImports(context.imports, block);
        const { tasks, rest } = /@ts-expect-error/.test(own) ? { tasks: [], rest: own } : taskDeclarations(own);
        // The tasks an example declares, later examples of the page may use.
        context.tasks.push(...tasks);
        code = [
          importLines(context.imports),
          context.setup,
          ...context.tasks,
          `// ---- the example (${page}:${start + 1}), in a block of its own ----`,
          `{\n${rest}\n}`,
        ].join("\n");
      }
      const file = join(dir, named?.[1] ?? `example-${start + 1}.ts`);
      // `export {}` makes every example a module, so top-level await type-checks.
      writeFileSync(
        file,
        `// ${page}:${start + 1}\nexport {};\n${code}\n${needsClose(code) ? "await app.close();\n" : ""}`,
      );
      examples.push({
        page,
        line: start + 1,
        file,
        // An example of compile errors is for the type checker only.
        runnable:
          named === null &&
          !needsMoreThanTheEmbeddedBroker(code) &&
          /\bcreate(Test)?App\(/.test(code) &&
          !/@ts-expect-error/.test(code),
      });
    }
  }
  return examples;
};

/** A continued example leaves the context's app open: close it, so the run ends. */
const needsClose = (code: string): boolean => /\bconst app = createApp\(/.test(code) && !/\bapp\.close\(\)/.test(code);

/** Each entry of package.json's exports, resolved to its source: dist/src/<name>.js is built from src/<name>.ts. */
const exportedEntries = (): Record<string, string[]> => {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    exports: Record<string, string | { default: string }>;
  };
  const paths: Record<string, string[]> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const built = typeof target === "string" ? target : target.default;
    if (!built.startsWith("./dist/") || !built.endsWith(".js")) continue;
    paths[subpath === "." ? "celerity" : `celerity/${subpath.slice(2)}`] = [
      join(root, built.slice("./dist/".length).replace(/\.js$/, ".ts")),
    ];
  }
  return paths;
};

describe("the examples in README.md and docs/", { concurrency: 2 }, () => {
  const examples = extract();

  it("type-check against the package's public entry points", () => {
    writeFileSync(join(work, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(
      join(work, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          allowImportingTsExtensions: true,
          noEmit: true,
          skipLibCheck: true,
          lib: ["ES2023"],
          types: ["node"],
          paths: exportedEntries(),
        },
        include: ["**/*.ts"],
      }),
    );
    const tsc = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", work], {
      encoding: "utf8",
    });
    const errors = `${tsc.stdout}${tsc.stderr}`.trim();
    assert.equal(
      tsc.status,
      0,
      `examples that do not type-check (the first line of each file names its page and line):\n${errors}`,
    );
  });

  for (const example of examples.filter((e) => e.runnable)) {
    it(`runs ${example.page}:${example.line} to its end`, async () => {
      const child = spawn(process.execPath, ["--import", "tsx", example.file], {
        cwd: dirname(example.file),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      try {
        const code = await within(
          new Promise<number | null>((resolve) => child.on("close", resolve)),
          scaled(30_000),
          `${example.page}:${example.line} to finish`,
          () => output,
        );
        assert.equal(code, 0, `${example.page}:${example.line} failed:\n${output}`);
      } finally {
        child.kill("SIGKILL");
      }
    });
  }
});
