/**
 * The app module the bench's worker process loads:
 *   celerity worker --app bench/node/tasks.ts --broker celerity://127.0.0.1:PORT
 * createApp() takes the node's url from CELERITY_BROKER_URL, which --broker sets.
 * CELERITY_BENCH_SIGNING, when set, holds the app's signing options as JSON
 * (bench/signing.bench.ts runs a signed worker with it).
 */
import { createApp } from "../../src/index.ts";
import { defineTasks } from "./task-defs.ts";

const signing = process.env.CELERITY_BENCH_SIGNING;
export const app = createApp(signing === undefined ? {} : { signing: JSON.parse(signing) });
export const tasks = defineTasks(app);
export default app;
