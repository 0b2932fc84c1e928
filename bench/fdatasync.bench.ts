/**
 * The bare cost of one `fdatasync` on the disk the durable log would use: a
 * 4 KiB write then an fdatasync, many times, one at a time; prints p50, p90
 * and p99. It bounds what one-at-a-time durable sends can reach (each waits
 * for one), whatever the node does.
 *
 *   node --import tsx bench/fdatasync.bench.ts [dir] [count]   # default: the OS temp dir, 300
 */
import * as fs from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";

const dir = process.argv[2] ?? tmpdir();
const count = Number(process.argv[3] ?? 300);
const path = join(dir, `celerity-fdatasync-${process.pid}.probe`);
const fd = fs.openSync(path, "w");
const page = Buffer.alloc(4096, 1);
const ms: number[] = [];
try {
  for (let i = 0; i < count; i++) {
    fs.writeSync(fd, page, 0, page.length, (i % 64) * page.length);
    const start = process.hrtime.bigint();
    fs.fdatasyncSync(fd);
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
} finally {
  fs.closeSync(fd);
  fs.unlinkSync(path);
}
ms.sort((a, b) => a - b);
const at = (p: number) => ms[Math.floor(p * (ms.length - 1))].toFixed(2);
console.log(
  `fdatasync after a 4 KiB write in ${dir}, ${count} times: p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms; ` +
    `load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
);
