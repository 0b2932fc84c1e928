/** Whether a peer's service answers on loopback, and the versions it reports, so that a peer whose service is down is skipped with a reason. */
import { connect } from "node:net";

/** Undefined when a TCP connection to host:port opens within `timeoutMs`; else why not. */
export const tcpUnreachable = (host: string, port: number, timeoutMs = 2_000): Promise<string | undefined> =>
  new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (reason: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => done(`no answer from ${host}:${port} within ${timeoutMs} ms`), timeoutMs);
    socket.once("connect", () => done(undefined));
    socket.once("error", (error) => done(`${host}:${port} is not reachable (${error.message})`));
  });

/** Send one inline Redis command and return the raw reply (up to the first pause), or throw. */
export const redisCommand = (host: string, port: number, command: string, timeoutMs = 2_000): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let reply = "";
    const timer = setTimeout(() => {
      socket.destroy();
      if (reply !== "") resolve(reply);
      else reject(new Error(`no reply from Redis at ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => socket.write(`${command}\r\n`));
    socket.setEncoding("utf8");
    socket.on("data", (text: string) => {
      reply += text;
      // A bulk reply is complete once its announced length has arrived; a status or error reply after its first line.
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      if (bulk === null ? reply.includes("\r\n") : reply.length >= bulk[0].length + Number(bulk[1]) + 2) {
        clearTimeout(timer);
        socket.destroy();
        resolve(reply);
      }
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });

export const REDIS = { host: "127.0.0.1", port: Number(process.env.CELERITY_PEERS_REDIS_PORT ?? 6379) };
export const AMQP = { host: "127.0.0.1", port: Number(process.env.CELERITY_PEERS_AMQP_PORT ?? 5672) };

/** Undefined when Redis answers PING; else why not. */
export const redisUnavailable = async (): Promise<string | undefined> => {
  const closed = await tcpUnreachable(REDIS.host, REDIS.port);
  if (closed !== undefined) return `Redis ${closed}`;
  try {
    const reply = await redisCommand(REDIS.host, REDIS.port, "PING");
    return reply.startsWith("+PONG")
      ? undefined
      : `Redis at ${REDIS.host}:${REDIS.port} answered PING with ${JSON.stringify(reply.trim())}`;
  } catch (error) {
    return `Redis at ${REDIS.host}:${REDIS.port}: ${error instanceof Error ? error.message : String(error)}`;
  }
};

export const redisVersion = async (): Promise<string> => {
  try {
    const info = await redisCommand(REDIS.host, REDIS.port, "INFO server");
    return /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
};

/** The installed version of an npm package of the harness's own package (bench/peers/node_modules). */
export const packageVersion = async (name: string): Promise<string> => {
  const { readFileSync } = await import("node:fs");
  try {
    return (
      JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), "utf8")) as {
        version: string;
      }
    ).version;
  } catch {
    return "not installed";
  }
};
