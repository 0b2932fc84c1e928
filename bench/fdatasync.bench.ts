/**
 * The bare cost of one `fdatasync` on the disk the durable log would use, one
 * at a time, in the shapes a log's commit can take; prints p50, p90 and p99
 * of each. It bounds what one-at-a-time durable sends can reach (each waits
 * for one), whatever the node does.
 *
 * - a 4 KiB page rewritten in place (the file's size never moves);
 * - a 174-byte record appended to the end (the size moves with every write,
 *   so each sync also journals the inode);
 * - a 174-byte record written into a file grown ahead of its writes (what
 *   the durable log's segments do, see broker/log/segment-file.ts).
 *
 *   node --import tsx bench/fdatasync.bench.ts [dir] [count]   # default: the OS temp dir, 1,000
 */
import * as fs from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";

const dir = process.argv[2] ?? tmpdir();
const count = Number(process.argv[3] ?? 1_000);
const path = join(dir, `celerity-fdatasync-${process.pid}.probe`);

/** Times the fdatasync after each of `count` writes; `write(fd, i)` writes the i-th. */
const timeSyncs = (prepare: (fd: number) => void, write: (fd: number, i: number) => void): number[] => {
  const fd = fs.openSync(path, "w");
  const ms: number[] = [];
  try {
    prepare(fd);
    fs.fsyncSync(fd);
    for (let i = 0; i < count; i++) {
      write(fd, i);
      const start = process.hrtime.bigint();
      fs.fdatasyncSync(fd);
      ms.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  } finally {
    fs.closeSync(fd);
    fs.unlinkSync(path);
  }
  return ms.sort((a, b) => a - b);
};

const page = Buffer.alloc(4096, 1);
const record = Buffer.alloc(174, 2);
const shapes: [string, number[]][] = [
  [
    "4 KiB page rewritten in place",
    timeSyncs(
      () => {},
      (fd, i) => fs.writeSync(fd, page, 0, page.length, (i % 64) * page.length),
    ),
  ],
  [
    "174-byte record appended",
    timeSyncs(
      () => {},
      (fd, i) => fs.writeSync(fd, record, 0, record.length, i * record.length),
    ),
  ],
  [
    "174-byte record into a file grown ahead",
    timeSyncs(
      (fd) => fs.ftruncateSync(fd, 1024 * 1024),
      (fd, i) => fs.writeSync(fd, record, 0, record.length, i * record.length),
    ),
  ],
];

console.log(`fdatasync in ${dir}, ${count} times each, one at a time:`);
for (const [shape, ms] of shapes) {
  const at = (p: number) => ms[Math.floor(p * (ms.length - 1))].toFixed(3);
  console.log(`  ${shape.padEnd(42)} p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms`);
}
console.log(
  `load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")}`,
);
