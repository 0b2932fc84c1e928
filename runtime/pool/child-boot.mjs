// Entry of a pool's thread or child process: TypeScript through tsx (a
// worker thread does not inherit the parent's loader hooks), then the child.
import { register } from "tsx/esm/api";

register();
await import("./pool-child.ts");
