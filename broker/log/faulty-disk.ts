/**
 * A disk that fails the way real ones do, for tests: the durable log reaches
 * storage only through `OpenSegment`, and this one puts a seeded fault plan
 * between the log and the files. Writes wait in a page cache until an fsync
 * (as on a real machine); faults are short writes (part of the data lands,
 * then ENOSPC), failed writes (EIO or ENOSPC, nothing lands), and failed
 * fsyncs (EIO or ENOSPC, after which the unsynced writes may or may not have
 * landed: the kernel drops dirty pages it could not write back, so an fsync
 * retried afterwards would report success for data that is gone). `cut()` is
 * a power cut: nothing more reaches the disk, and of the writes not yet
 * synced only a seeded prefix lands, the last of them possibly torn.
 * An outage is a fault that lasts: the disk is full (or failing) for a seeded
 * number of operations, then takes writes again, as when space is freed.
 *
 * The same seed and the same sequence of operations give the same faults.
 *
 * @example
 * const disk = faultyDisk(42, { faultRate: 0.05 });
 * const node = await BrokerNode.start({ dataDir }, { openSegment: disk.openSegment });
 * disk.cut();
 */
import { type OpenSegment, openSegmentFile } from "./segment-file.ts";

/** How often faults strike, each a probability per operation. */
export interface FaultPlan {
  /** Probability that a write or an fsync fails. Default 0. */
  readonly faultRate?: number;
  /** Probability that an outage starts at a write, fsync or truncate. Default 0. */
  readonly outageRate?: number;
  /** An outage lasts from 1 to this many operations (seeded). Default 8. */
  readonly outageOps?: number;
}

/** What the disk did, for a test's failure message. */
export interface FaultEvent {
  readonly op: number;
  readonly what: string;
}

/** A small seeded generator (mulberry32): the same seed gives the same sequence. */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

const osError = (code: string, detail: string): Error =>
  Object.assign(new Error(`${code}: ${detail} (injected)`), { code });

export const faultyDisk = (seed: number, plan: FaultPlan = {}) => {
  const random = seededRandom(seed);
  const faultRate = plan.faultRate ?? 0;
  const outageRate = plan.outageRate ?? 0;
  const outageOps = plan.outageOps ?? 8;
  const events: FaultEvent[] = [];
  let ops = 0;
  /** Operations the current outage still fails, and with what. */
  let outageLeft = 0;
  let outageCode = "ENOSPC";
  /** The code operation `op` fails with because of an outage, if it does (drawing whether one starts). */
  const outage = (op: number): string | undefined => {
    if (outageLeft === 0 && outageRate > 0 && random() < outageRate) {
      outageLeft = 1 + Math.floor(random() * outageOps);
      outageCode = random() < 0.7 ? "ENOSPC" : "EIO";
      events.push({ op, what: `outage: ${outageCode} for ${outageLeft} operations` });
    }
    if (outageLeft === 0) return undefined;
    outageLeft -= 1;
    if (outageLeft === 0) events.push({ op, what: "outage ends after this operation" });
    return outageCode;
  };
  let powered = true;
  /** Unsynced writes of every open file, so a power cut can land a prefix of each. */
  const caches = new Set<{ land: (count: number, tornAt: number | undefined) => Promise<void>; size: () => number }>();

  const openSegment: OpenSegment = async (path) => {
    if (!powered) throw osError("EIO", "the power is off");
    const file = await openSegmentFile(path);
    let unsynced: { data: Uint8Array; position: number }[] = [];
    const cache = {
      size: () => unsynced.length,
      land: async (count: number, tornAt: number | undefined) => {
        for (let i = 0; i < count && i < unsynced.length; i++) {
          const { data, position } = unsynced[i];
          await file.write(
            i === count - 1 && tornAt !== undefined ? data.subarray(0, Math.floor(data.length * tornAt)) : data,
            position,
          );
        }
        unsynced = [];
      },
    };
    caches.add(cache);
    return {
      write: async (data, position) => {
        if (!powered) return;
        const op = ++ops;
        const down = outage(op);
        if (down !== undefined) {
          events.push({ op, what: `write failed with ${down} (outage)` });
          throw osError(down, "write failed");
        }
        if (random() < faultRate) {
          const kind = random();
          if (kind < 0.4) {
            const landed = Math.floor(data.length * random());
            unsynced.push({ data: data.slice(0, landed), position });
            events.push({ op, what: `short write: ${landed} of ${data.length} bytes, then ENOSPC` });
            throw osError("ENOSPC", `no space left on device after ${landed} of ${data.length} bytes`);
          }
          const code = kind < 0.7 ? "EIO" : "ENOSPC";
          events.push({ op, what: `write failed with ${code}` });
          throw osError(code, "write failed");
        }
        unsynced.push({ data: data.slice(), position });
      },
      datasync: async () => {
        if (!powered) return;
        const op = ++ops;
        const down = outage(op);
        if (down !== undefined || random() < faultRate) {
          const code = down ?? (random() < 0.5 ? "EIO" : "ENOSPC");
          // Write-back failed: some of the dirty pages may have reached the disk, the rest are dropped for good.
          const landed = Math.floor(random() * (unsynced.length + 1));
          await cache.land(landed, undefined);
          events.push({
            op,
            what: `fsync failed with ${code}; ${landed} unsynced writes landed, the rest were dropped`,
          });
          throw osError(code, "fsync failed");
        }
        await cache.land(unsynced.length, undefined);
        await file.datasync();
      },
      truncate: async (length) => {
        if (!powered) return;
        const op = ++ops;
        const down = outage(op);
        if (down !== undefined) {
          events.push({ op, what: `truncate failed with ${down} (outage)` });
          throw osError(down, "truncate failed");
        }
        // What is cut off is cut from the cache too, or a later fsync would bring it back.
        unsynced = unsynced
          .filter(({ position }) => position < length)
          .map((write) =>
            write.position + write.data.length <= length
              ? write
              : { data: write.data.subarray(0, length - write.position), position: write.position },
          );
        await file.truncate(length);
      },
      close: async () => {
        caches.delete(cache);
        // A file closed without an fsync keeps its dirty pages in the cache, where a power cut finds them.
        if (powered) await cache.land(unsynced.length, undefined);
        await file.close();
      },
    };
  };

  /** Power cut: of each file's unsynced writes a seeded prefix lands, its last write possibly torn. */
  const cut = async (): Promise<void> => {
    if (!powered) return;
    powered = false;
    for (const cache of caches) {
      const count = Math.floor(random() * (cache.size() + 1));
      const torn = random() < 0.5 ? random() : undefined;
      events.push({
        op: ++ops,
        what: `power cut: ${count} of ${cache.size()} unsynced writes landed${torn === undefined ? "" : ", the last torn"}`,
      });
      await cache.land(count, torn);
    }
  };

  return {
    openSegment,
    cut,
    events,
    get operations() {
      return ops;
    },
  };
};
