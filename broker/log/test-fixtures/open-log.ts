/**
 * Child process for the durable log's permission test: opens the log in
 * argv[2] and prints what happened as one JSON line, `{"opened":true}` or
 * `{"tag":…,"code":…,"message":…}`. Run without the capabilities that let
 * root write through permission bits, it sees what any other user would.
 */
import { DurableLog } from "../durable-log.ts";

try {
  const { log } = await DurableLog.open(process.argv[2]);
  await log.close();
  console.log(JSON.stringify({ opened: true }));
} catch (error) {
  const { _tag, code, message } = error as { _tag?: string; code?: string; message: string };
  console.log(JSON.stringify({ tag: _tag, code, message }));
}
