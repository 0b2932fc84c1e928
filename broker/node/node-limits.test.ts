// What a connection may cost the node before and after its handshake.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { describe, it } from "node:test";
import { within } from "../../tests/support/waits.ts";
import { InvalidArgumentError } from "../errors.ts";
import { BrokerNode, type BrokerNodeOptions } from "./node-server.ts";
import { NodeTransport } from "./client/node-transport.ts";
import { FrameCodec, FrameType, PROTOCOL_VERSION } from "./protocol.ts";
import { encodeFrame } from "./wire-frame.ts";

const codec = new FrameCodec();
const hello = (token?: string) =>
  encodeFrame(
    FrameType.Hello,
    codec.encode({ version: PROTOCOL_VERSION, name: "raw", ...(token !== undefined ? { token } : {}) }),
  );

const start = async (options: BrokerNodeOptions = {}) => {
  const logs: string[] = [];
  const node = await BrokerNode.start({ port: 0, log: (line) => logs.push(line), ...options });
  return { node, logs };
};

/** A raw connection, with the time it was closed by the node (or undefined while open). */
const raw = async (port: number) => {
  const socket: Socket = connect({ host: "127.0.0.1", port });
  socket.on("error", () => {});
  const state = { closedAt: undefined as number | undefined, received: Buffer.alloc(0) };
  const closed = new Promise<void>((resolve) =>
    socket.on("close", () => {
      state.closedAt = Date.now();
      resolve();
    }),
  );
  socket.on("data", (chunk: Buffer) => (state.received = Buffer.concat([state.received, chunk])));
  await new Promise<void>((resolve) => socket.on("connect", () => resolve()));
  return { socket, closed, state };
};

describe("broker node: what strangers can cost", () => {
  it("refuses a first frame larger than a Hello at its header, before reading it", async (t) => {
    const { node, logs } = await start();
    t.after(() => node.stop());
    const client = await raw(node.address.port);
    t.after(() => client.socket.destroy());
    const header = Buffer.alloc(5);
    header.writeUInt32BE(16 * 1024 * 1024 - 4);
    client.socket.write(header);
    await within(client.closed, 5_000, "the node to close the connection");
    assert.ok(
      logs.some((line) => /closed: frame of 16777216 bytes exceeds the maximum of 65536 bytes/.test(line)),
      logs.join("\n"),
    );
  });

  it("closes a connection that does not complete its handshake in time", async (t) => {
    const { node, logs } = await start({ handshakeTimeoutMs: 100 });
    t.after(() => node.stop());
    // Before the connect: the node's clock for the handshake starts when it accepts, which can be well before
    // this process sees its side of the connection open on a loaded machine.
    const opened = Date.now();
    const client = await raw(node.address.port);
    t.after(() => client.socket.destroy());
    // A Hello announced at 60,000 bytes, sent a byte a while: the heartbeat is fed, the Hello never completes.
    const header = Buffer.alloc(5);
    header.writeUInt32BE(60_000);
    header[4] = FrameType.Hello;
    client.socket.write(header);
    const drip = setInterval(() => client.socket.write(Buffer.from([0])), 20);
    t.after(() => clearInterval(drip));
    await within(client.closed, 5_000, "the node to close the connection");
    assert.ok(Date.now() - opened >= 100);
    assert.ok(
      logs.some((line) => /closed: no handshake within 100 ms/.test(line)),
      logs.join("\n"),
    );
  });

  it("turns away connections past its maximum of unauthenticated ones, and serves those that complete a handshake", async (t) => {
    const { node, logs } = await start({ maxUnauthenticatedConnections: 3 });
    t.after(() => node.stop());
    const strangers = await Promise.all([1, 2, 3].map(() => raw(node.address.port)));
    t.after(() => strangers.forEach((s) => s.socket.destroy()));
    const fourth = await raw(node.address.port);
    await within(fourth.closed, 5_000, "the fourth stranger to be turned away");
    assert.ok(
      logs.some((line) =>
        /turned away 1 connection\(s\): 3 connections have not completed their handshake \(maximum 3\)/.test(line),
      ),
      logs.join("\n"),
    );
    assert.deepEqual(
      strangers.map((s) => s.state.closedAt),
      [undefined, undefined, undefined],
    );
    // Once one of them completes its handshake, there is room again.
    strangers[0].socket.write(hello());
    await within(
      (async () => {
        while (!strangers[0].state.received.includes(FrameType.Welcome))
          await new Promise((resolve) => setTimeout(resolve, 5));
      })(),
      5_000,
      "the Welcome",
    );
    const transport = await NodeTransport.connect(node.url);
    t.after(() => transport.close());
    await transport.declareQueue("served");
  });

  it("turns away connections past its maximum in all", async (t) => {
    const { node, logs } = await start({ maxConnections: 2 });
    t.after(() => node.stop());
    const a = await NodeTransport.connect(node.url);
    const b = await NodeTransport.connect(node.url);
    t.after(() => Promise.all([a.close(), b.close()]));
    const third = await raw(node.address.port);
    await within(third.closed, 5_000, "the third connection to be turned away");
    assert.ok(
      logs.some((line) => /the node holds its maximum of 2 connections/.test(line)),
      logs.join("\n"),
    );
  });

  it("closes a client that trickles a frame too slowly to finish it, after its handshake", async (t) => {
    const { node, logs } = await start({ heartbeatMs: 50 });
    t.after(() => node.stop());
    const client = await raw(node.address.port);
    t.after(() => client.socket.destroy());
    client.socket.write(hello());
    // A frame announced at 1,000 bytes, sent a byte at a time: bytes keep coming, the frame never ends.
    const frame = encodeFrame(FrameType.Ping, new Uint8Array(995));
    let sent = 0;
    const drip = setInterval(() => client.socket.write(frame.subarray(sent, ++sent)), 10);
    t.after(() => clearInterval(drip));
    await within(client.closed, 5_000, "the node to close the slow connection");
    assert.ok(
      logs.some((line) => /closed: a frame has been arriving for \d+ ms \(\d+ bytes so far\): too slow/.test(line)),
      logs.join("\n"),
    );
  });

  it("answers a wrong token only after a delay, and logs the refusal", async (t) => {
    const { node, logs } = await start({ token: "right", refusalDelayMs: 300 });
    t.after(() => node.stop());
    const began = Date.now();
    await assert.rejects(
      NodeTransport.connect(node.url, { token: "wrong" }),
      /refused the connection \(unauthorized\): wrong token/,
    );
    assert.ok(Date.now() - began >= 300, `refused after ${Date.now() - began} ms`);
    assert.ok(
      logs.some((line) => /closed: refused \(unauthorized\): wrong token/.test(line)),
      logs.join("\n"),
    );
  });

  it("refuses to listen beyond loopback without a token, unless told to allow anyone", async (t) => {
    await assert.rejects(BrokerNode.start({ port: 0, host: "0.0.0.0", log: () => {} }), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.match(
        error.message,
        /a node listening on 0\.0\.0\.0 can be reached from other machines and must require a token/,
      );
      return true;
    });
    await assert.rejects(
      BrokerNode.start({ port: 0, host: "0.0.0.0", token: "", log: () => {} }),
      InvalidArgumentError,
    );
    const open = await BrokerNode.start({ port: 0, host: "0.0.0.0", allowAnonymous: true, log: () => {} });
    t.after(() => open.stop());
    const guarded = await BrokerNode.start({ port: 0, host: "0.0.0.0", token: "s3cret", log: () => {} });
    t.after(() => guarded.stop());
  });
});
