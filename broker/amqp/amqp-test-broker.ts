/**
 * RabbitMQ for tests: a vhost of their own on the local server (made with
 * rabbitmqctl, deleted afterwards with everything in it), so concurrent runs
 * never see each other's queues. When RabbitMQ is not there the tests skip
 * with a message, unless CELERITY_REQUIRE_SERVICES=1 (as in CI), where that
 * is a failure.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface TestVhost {
  /** amqp:// url of the vhost. */
  readonly url: string;
  readonly vhost: string;
  /** Delete the vhost and everything in it. */
  dispose(): Promise<void>;
}

/** The server the tests use: CELERITY_AMQP_URL, default guest on 127.0.0.1:5672. */
export const AMQP_TEST_URL = process.env.CELERITY_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";

/**
 * A fresh vhost for this test file, or the reason there is none (to skip with).
 * Throws instead when CELERITY_REQUIRE_SERVICES=1.
 */
export const testVhost = async (label: string): Promise<TestVhost | { readonly skip: string }> => {
  const base = new URL(AMQP_TEST_URL);
  const reachable = await new Promise<boolean>((resolve) => {
    const socket = connect(Number(base.port || 5672), base.hostname);
    socket.setTimeout(1_000);
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => (socket.destroy(), resolve(false)));
  });
  const missing = (reason: string) => {
    if (process.env.CELERITY_REQUIRE_SERVICES === "1")
      throw new Error(`RabbitMQ is required (CELERITY_REQUIRE_SERVICES=1) but ${reason}`);
    console.log(`# skipping RabbitMQ tests: ${reason}`);
    return { skip: `RabbitMQ tests skipped: ${reason}` };
  };
  if (!reachable) return missing(`nothing listens at ${base.host}`);
  const vhost = `celerity-test-${label}-${randomUUID().slice(0, 8)}`;
  const user = decodeURIComponent(base.username || "guest");
  try {
    await run("rabbitmqctl", ["add_vhost", vhost]);
    await run("rabbitmqctl", ["set_permissions", "-p", vhost, user, ".*", ".*", ".*"]);
  } catch (error) {
    return missing(
      `could not make a vhost with rabbitmqctl (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`,
    );
  }
  const url = new URL(AMQP_TEST_URL);
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return {
    url: url.toString(),
    vhost,
    dispose: async () => {
      await run("rabbitmqctl", ["delete_vhost", vhost]).catch(() => {});
    },
  };
};

/**
 * A TCP proxy in front of RabbitMQ whose connections a test can cut (both
 * sides destroyed at once, as a network failure would), and refuse for a
 * while, to see a client recover on its own.
 */
export class CutProxy {
  private readonly sockets = new Set<Socket>();
  private refusing = false;
  private server: Server | undefined;
  url = "";

  /** Listen on a free loopback port and forward to the server of `target` (an amqp:// url, whose vhost the proxy's url keeps). */
  static async start(target: string): Promise<CutProxy> {
    const proxy = new CutProxy();
    const upstream = new URL(target);
    const server = createServer((client) => {
      if (proxy.refusing) return client.destroy();
      const remote = connect(Number(upstream.port || 5672), upstream.hostname);
      for (const socket of [client, remote]) {
        proxy.sockets.add(socket);
        socket.on("close", () => proxy.sockets.delete(socket));
        socket.on("error", () => {});
      }
      client.pipe(remote);
      remote.pipe(client);
      client.on("close", () => remote.destroy());
      remote.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    proxy.server = server;
    const url = new URL(target);
    url.hostname = "127.0.0.1";
    url.port = String((server.address() as AddressInfo).port);
    proxy.url = url.toString();
    return proxy;
  }

  /** Open connections right now. */
  get connections(): number {
    return this.sockets.size / 2;
  }

  /** Destroy every open connection; with `refuseMs`, also refuse new ones for that long. */
  cut(refuseMs = 0): void {
    for (const socket of this.sockets) socket.destroy();
    if (refuseMs > 0) {
      this.refusing = true;
      setTimeout(() => (this.refusing = false), refuseMs).unref();
    }
  }

  async close(): Promise<void> {
    this.cut();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
