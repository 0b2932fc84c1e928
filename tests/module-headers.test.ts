/**
 * Every module opens with a comment saying its job, before its imports (after
 * a `#!` line, if it has one): a reader learns what a file is for from its
 * first lines. Test files are exempt; their test names say what they check.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SOURCE_FOLDERS = ["dsl", "broker", "runtime", "src", "bench", "scripts", "tests", "property-tests"];
const MODULE = /\.(?:ts|mts|cts|js|mjs|cjs)$/;
const TEST = /\.test\.[cm]?[jt]s$/;

const modulesUnder = (folder: string): string[] =>
  readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : modulesUnder(path);
    return entry.isFile() && MODULE.test(entry.name) && !TEST.test(entry.name) ? [path] : [];
  });

/** The module's first line that is not a `#!` line, or undefined for an empty file. */
const firstLine = (text: string): string | undefined => {
  const lines = text.split("\n");
  return (lines[0].startsWith("#!") ? lines[1] : lines[0])?.trimStart();
};

const opensWithComment = (text: string): boolean => {
  const line = firstLine(text);
  return line !== undefined && (line.startsWith("//") || line.startsWith("/*"));
};

describe("module headers", () => {
  it("open every non-test module with a comment saying its job", () => {
    const modules = SOURCE_FOLDERS.flatMap((folder) => modulesUnder(join(ROOT, folder)));
    assert.ok(modules.length > 100, `only ${modules.length} modules found: the source folders were not read`);
    const headerless = modules
      .filter((path) => !opensWithComment(readFileSync(path, "utf8")))
      .map((path) => relative(ROOT, path));
    assert.deepEqual(headerless, [], `modules whose first line is not a comment:\n${headerless.join("\n")}`);
  });

  it("takes a shebang line as the opening and looks at the line after it", () => {
    assert.equal(opensWithComment("#!/usr/bin/env node\n// The CLI.\nimport x from 'y';\n"), true);
    assert.equal(opensWithComment("#!/usr/bin/env node\nimport x from 'y';\n"), false);
    assert.equal(opensWithComment('import { a } from "./a.ts";\n/** The job. */\n'), false);
    assert.equal(opensWithComment("/**\n * The job.\n */\nexport const a = 1;\n"), true);
    assert.equal(opensWithComment(""), false);
  });
});
