#!/usr/bin/env node
// The `celerity` CLI run from the sources (npm start, tests, benches): registers
// the TypeScript loader for celerity's own code, then runs the binary's entry.
// The published package runs the compiled dist/src/bin.js instead.
import { register } from "tsx/esm/api";

register();
globalThis[Symbol.for("celerity.typescript-loader")] = true;
await import("./bin.ts");
