// Importing a user's module (a workflow or an app) by path, registering a TypeScript
// loader first only when the module is TypeScript.
import { pathToFileURL } from "node:url";

const TYPESCRIPT_FILE = /\.[cm]?tsx?$/;
/** Set once a TypeScript loader is registered in this process (by this module, or by the development launcher). */
const LOADER_REGISTERED = Symbol.for("celerity.typescript-loader");

/**
 * Import a user's module (a workflow or an app) by path. A TypeScript module
 * gets a TypeScript loader registered first; a JavaScript one loads as is,
 * without paying for the loader's start-up.
 */
export const importUserModule = async (path: string): Promise<Record<string, unknown>> => {
  const registry = globalThis as { [LOADER_REGISTERED]?: boolean };
  if (TYPESCRIPT_FILE.test(path) && registry[LOADER_REGISTERED] !== true) {
    const { register } = await import("tsx/esm/api");
    register();
    registry[LOADER_REGISTERED] = true;
  }
  return (await import(pathToFileURL(path).href)) as Record<string, unknown>;
};
