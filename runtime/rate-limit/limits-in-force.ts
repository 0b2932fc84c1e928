// The rate limits in force in this process, by task: each task's registered
// limit, overridden at run time by `app.control.rateLimit` (directly with
// the embedded broker; pushed by the broker node to every process
// otherwise). `get` is on every delivery's path: one Map look-up.
import type { RateLimit } from "./rate-setting.ts";
import type { BucketLimit } from "./token-bucket.ts";

/** A task's limit as changed at run time: a new limit, or null for none. */
export type LimitOverride = BucketLimit | null;

export class RateLimitTable {
  private readonly registered = new Map<string, RateLimit>();
  private readonly overrides = new Map<string, LimitOverride>();
  private readonly effective = new Map<string, RateLimit>();
  private readonly listeners = new Set<(task: string) => void>();

  /** Hear of every change of a task's limit; returns an unsubscribe function. */
  onChange(listener: (task: string) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** The limit in force for `task`, if any. */
  get(task: string): RateLimit | undefined {
    return this.effective.get(task);
  }

  /** Whether any task is limited (workers skip the rate gate entirely when none is, and none can be). */
  get size(): number {
    return this.effective.size;
  }

  register(task: string, limit: RateLimit): void {
    this.registered.set(task, limit);
    this.update(task);
  }

  /** Replace `task`'s rate (and burst) at run time; null removes its limit. Its scope and key stay as registered. */
  override(task: string, limit: LimitOverride): void {
    this.overrides.set(task, limit);
    this.update(task);
    for (const listener of this.listeners) listener(task);
  }

  /** Every override, to hand to a process that connects later. */
  overridden(): [string, LimitOverride][] {
    return [...this.overrides];
  }

  private update(task: string): void {
    const registered = this.registered.get(task);
    const override = this.overrides.get(task);
    if (override === null) return void this.effective.delete(task);
    if (override === undefined) {
      if (registered === undefined) this.effective.delete(task);
      else this.effective.set(task, registered);
      return;
    }
    const rate = `${override.count}/${override.periodMs === 1_000 ? "s" : override.periodMs === 60_000 ? "m" : "h"}`;
    this.effective.set(task, {
      scope: registered?.scope ?? "global",
      ...(registered?.key !== undefined ? { key: registered.key } : {}),
      count: override.count,
      periodMs: override.periodMs,
      burst: override.burst,
      rate,
    });
  }
}
