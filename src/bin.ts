#!/usr/bin/env node
// The `celerity` binary. A command that failed exits at once, even with a
// connection or timer still open (a worker's app, a workflow's broker client);
// one that succeeded lets the process end on its own.
import { main } from "./cli/main.ts";

const code = await main(process.argv.slice(2));
if (code === 0) process.exitCode = 0;
else process.exit(code);
