/**
 * Every export of the package's entries (package.json `exports`) has JSDoc
 * with an example where it is declared: that comment is what an editor shows
 * a user from the shipped declarations. Re-exports are followed to the
 * declaration.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The source file of each entry: dist/src/<name>.js is built from src/<name>.ts. */
const entrySources = (): string[] => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    exports: Record<string, string | { default: string }>;
  };
  return Object.values(pkg.exports)
    .map((target) => (typeof target === "string" ? target : target.default))
    .filter((target) => target.startsWith("./dist/") && target.endsWith(".js"))
    .map((target) => join(ROOT, target.slice("./dist/".length).replace(/\.js$/, ".ts")));
};

const read = (file: string) => readFileSync(file, "utf8");
const exportLists = /export\s+(?:type\s+)?\{([^}]*)\}\s*(?:from\s+"([^"]+)")?/g;
const namesIn = (list: string) =>
  list
    .split(",")
    .map((name) => name.trim().replace(/^type\s+/, ""))
    .filter(Boolean)
    .map((name) => {
      const [original, alias] = name.split(/\s+as\s+/);
      return { original, exported: alias ?? original };
    });

/** The JSDoc right above `name`'s declaration in `file`, following re-exports; undefined if there is none. */
const docOf = (name: string, file: string, seen = new Set<string>()): { doc: string | undefined; where: string } => {
  const key = `${file}#${name}`;
  if (seen.has(key)) return { doc: undefined, where: key };
  seen.add(key);
  const text = read(file);
  const declaration = new RegExp(
    `(?:^|\\n)export\\s+(?:declare\\s+)?(?:abstract\\s+)?(?:class|const|function|interface|type|let|enum)\\s+${name}\\b`,
  ).exec(text);
  if (declaration !== null) {
    const before = text.slice(0, declaration.index + (text[declaration.index] === "\n" ? 1 : 0));
    const doc = /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*$/.exec(before)?.[1];
    return { doc, where: `${file.slice(ROOT.length)}: ${name}` };
  }
  for (const match of text.matchAll(exportLists)) {
    const found = namesIn(match[1]).find((entry) => entry.exported === name);
    if (found === undefined) continue;
    if (match[2] !== undefined) return docOf(found.original, resolve(dirname(file), match[2]), seen);
    const imported = new RegExp(
      `import\\s+(?:type\\s+)?\\{[^}]*\\b${found.original}\\b[^}]*\\}\\s+from\\s+"([^"]+)"`,
    ).exec(text);
    if (imported !== null) return docOf(found.original, resolve(dirname(file), imported[1]), seen);
  }
  return { doc: undefined, where: `${file.slice(ROOT.length)}: ${name} (declaration not found)` };
};

describe("the public API's documentation", () => {
  it("has JSDoc with an @example on every export of every entry", () => {
    const missing: string[] = [];
    let checked = 0;
    for (const entry of entrySources()) {
      for (const match of read(entry).matchAll(exportLists)) {
        for (const { exported } of namesIn(match[1])) {
          const { doc, where } = docOf(exported, entry);
          checked++;
          if (doc === undefined) missing.push(`${where}: no JSDoc`);
          else if (!doc.includes("@example")) missing.push(`${where}: JSDoc without an @example`);
        }
      }
    }
    assert.ok(checked > 100, `only ${checked} exports found: the entries were not read`);
    assert.deepEqual(missing, [], `public exports to document:\n${missing.join("\n")}`);
  });
});
