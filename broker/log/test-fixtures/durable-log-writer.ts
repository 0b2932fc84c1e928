/**
 * Child process for the durable log's crash test: opens the log in argv[2]
 * (fsync policy argv[3]: "always" or "interval"), prints "opened N" with the
 * number of records recovered, then appends records N, N+1, ... with 64 in
 * flight forever, printing each record's number once its append has resolved.
 * The test kills it with SIGKILL mid-stream.
 *
 * @example
 * node --import tsx broker/log/test-fixtures/durable-log-writer.ts /tmp/log always
 */
import { DurableLog } from "../durable-log.ts";

const [dir, mode] = process.argv.slice(2);
const text = new TextEncoder();
/** Must match `recordFor` in durable-log.crash.test.ts. */
const recordFor = (i: number): Uint8Array => text.encode(`crash record ${i} ${"y".repeat((i * 53) % 120)}`);

const { log, records } = await DurableLog.open(dir, {
  fsync: mode === "always" ? "always" : { intervalMs: 100 },
  segmentBytes: 64 * 1024,
});
// stdout is a pipe, written synchronously on POSIX: a printed line is out before the next append starts.
process.stdout.write(`opened ${records.length}\n`);
let next = records.length;
const appendForever = async (): Promise<void> => {
  for (;;) {
    const i = next++;
    await log.append(recordFor(i));
    process.stdout.write(`${i}\n`);
  }
};
await Promise.all(Array.from({ length: 64 }, appendForever));
