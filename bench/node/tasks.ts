/**
 * The app module the bench's worker process loads:
 *   celerity worker --app bench/node/tasks.ts --broker celerity://127.0.0.1:PORT
 * createApp() takes the node's url from CELERITY_BROKER_URL, which --broker sets.
 */
import { createApp } from "../../src/index.ts";
import { defineTasks } from "./task-defs.ts";

export const app = createApp();
export const tasks = defineTasks(app);
export default app;
