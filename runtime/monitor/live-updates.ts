/**
 * The dashboard's live updates over Server-Sent Events: once a second,
 * while anyone listens, one snapshot of the cluster (workers, queue depths,
 * task counts, throughput and latency) goes to every open stream. The
 * snapshot is made once per tick whatever the number of listeners, and
 * nothing is asked of the broker while no one listens.
 */
import type { ApiQueries } from "./api-queries.ts";
import type { MonitorState } from "./monitor-state.ts";

/** How often a snapshot goes out. */
const TICK_MS = 1_000;

const encoder = new TextEncoder();

/**
 * One tick's picture of the cluster, as each `update` event carries it.
 *
 * @example
 * source.addEventListener("update", (event) => render(JSON.parse(event.data) as LiveSnapshot));
 */
export interface LiveSnapshot {
  /** Epoch ms when it was made. */
  readonly at: number;
  readonly workers: Awaited<ReturnType<ApiQueries["workers"]>>;
  /** The queues, or null when the broker cannot list them (then `queueError` says why). */
  readonly queues: Awaited<ReturnType<ApiQueries["queues"]>> | null;
  readonly queueError?: string;
  readonly counts: ReturnType<MonitorState["tasks"]["counts"]>;
  readonly known: number;
  readonly events: number;
  readonly series: ReturnType<MonitorState["series"]["points"]>;
}

export class LiveUpdates {
  private readonly listeners = new Set<ReadableStreamDefaultController<Uint8Array>>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;

  constructor(
    private readonly state: MonitorState,
    private readonly queries: ApiQueries,
  ) {}

  /** How many streams are open. */
  get listening(): number {
    return this.listeners.size;
  }

  /** The current picture. */
  async snapshot(): Promise<LiveSnapshot> {
    this.state.flush();
    const [workers, queues] = await Promise.all([
      this.queries.workers(),
      this.queries.queues(false).then(
        (list) => ({ list, error: undefined }),
        (error: unknown) => ({ list: null, error: error instanceof Error ? error.message : String(error) }),
      ),
    ]);
    return {
      at: Date.now(),
      workers,
      queues: queues.list,
      ...(queues.error !== undefined ? { queueError: queues.error } : {}),
      counts: this.state.tasks.counts(),
      known: this.state.tasks.size,
      events: this.state.taskEventCount,
      series: this.state.series.points(),
    };
  }

  /** A `text/event-stream` response that receives every snapshot until the client goes away. */
  stream(): Response {
    let own: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        own = controller;
        this.listeners.add(controller);
        controller.enqueue(encoder.encode("retry: 2000\n\n"));
        this.startTicking();
        void this.tick();
      },
      cancel: () => {
        if (own !== undefined) this.listeners.delete(own);
        if (this.listeners.size === 0) this.stopTicking();
      },
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  }

  private startTicking(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    this.timer.unref();
  }

  private stopTicking(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    // A slow broker must not pile up snapshots: one at a time.
    if (this.ticking || this.listeners.size === 0) return;
    this.ticking = true;
    try {
      const frame = encoder.encode(`event: update\ndata: ${JSON.stringify(await this.snapshot())}\n\n`);
      for (const listener of this.listeners) {
        try {
          listener.enqueue(frame);
        } catch {
          this.listeners.delete(listener);
        }
      }
    } catch (error) {
      const frame = encoder.encode(
        `event: problem\ndata: ${JSON.stringify({ message: error instanceof Error ? error.message : String(error) })}\n\n`,
      );
      for (const listener of this.listeners) listener.enqueue(frame);
    } finally {
      this.ticking = false;
    }
  }

  /** End every stream. */
  close(): void {
    this.stopTicking();
    for (const listener of this.listeners) {
      try {
        listener.close();
      } catch {
        // already closed by its client
      }
    }
    this.listeners.clear();
  }
}
