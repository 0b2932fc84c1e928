/**
 * A TCP proxy that cuts connections at random byte counts, for fault tests
 * of a client against a server (a broker node, Redis, ...): each connection
 * is cut once it has forwarded a random number of bytes (both directions
 * together), until `maxCuts` connections have been cut; after that it only
 * forwards. A cut forwards the bytes up to the cut point (often mid-frame or
 * mid-command), then closes both sides.
 *
 * @example
 * const proxy = new CuttingProxy(node.port, seeded(42), 5);
 * const port = await proxy.start();
 * // ... connect the client to 127.0.0.1:port ...
 * await proxy.stop();
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";

export interface CuttingProxyOptions {
  /** Most bytes a connection forwards before a late cut (the early ones fall in the first 300). Default 20,000. */
  readonly lateCutBytes?: number;
  /** Called at each cut. */
  readonly onCut?: () => void;
}

export class CuttingProxy {
  cuts = 0;
  /** The byte count of each cut, in order, to report with a failure. */
  readonly cutAt: number[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly targetPort: number,
    private readonly random: () => number,
    private readonly maxCuts: number,
    private readonly options: CuttingProxyOptions = {},
  ) {}

  /** Listen on loopback; resolves with the port. */
  async start(): Promise<number> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return (server.address() as AddressInfo).port;
  }

  /** A cut point: a quarter inside the handshake or the first requests, the rest a few kilobytes in. */
  private threshold(): number {
    const late = this.options.lateCutBytes ?? 20_000;
    return this.random() < 0.25 ? 1 + Math.floor(this.random() * 300) : 1_000 + Math.floor(this.random() * late);
  }

  private accept(client: Socket): void {
    const upstream = connect({ host: "127.0.0.1", port: this.targetPort });
    this.sockets.add(client).add(upstream);
    const limit = this.cuts < this.maxCuts ? this.threshold() : Number.POSITIVE_INFINITY;
    let forwarded = 0;
    let cut = false;
    const forward = (from: Socket, to: Socket) => (chunk: Buffer) => {
      if (cut) return;
      if (forwarded + chunk.length < limit || this.cuts >= this.maxCuts) {
        forwarded += chunk.length;
        to.write(chunk);
        return;
      }
      cut = true;
      this.cuts++;
      this.cutAt.push(limit);
      this.options.onCut?.();
      to.end(chunk.subarray(0, limit - forwarded), () => to.destroy());
      from.destroy();
    };
    client.on("data", forward(client, upstream));
    upstream.on("data", forward(upstream, client));
    for (const [socket, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      socket.on("error", () => {});
      socket.on("close", () => {
        this.sockets.delete(socket);
        if (!cut) other.destroy();
      });
    }
  }

  /** Close every connection and stop listening. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
