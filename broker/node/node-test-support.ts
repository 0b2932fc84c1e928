// Test helpers for the broker node: a node on a free port with a transport connected to
// it, closed together, and temporary data directories.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BrokerNode, type BrokerNodeOptions } from "./node-server.ts";
import { NodeTransport } from "./client/node-transport.ts";
import type { Transport } from "../transport.ts";

/** A node on a free port with a fresh data dir (if durable), and a transport connected to it, closed together. For tests. */
export const nodeWithTransport = async (
  options: BrokerNodeOptions & { readonly durable?: boolean } = {},
): Promise<Transport> => {
  const dataDir = options.durable ? mkdtempSync(join(tmpdir(), "celerity-node-")) : undefined;
  const node = await BrokerNode.start({
    port: 0,
    log: () => {},
    ...options,
    ...(dataDir !== undefined ? { dataDir } : {}),
  });
  const transport = await NodeTransport.connect(node.url, {
    ...(options.token !== undefined ? { token: options.token } : {}),
  });
  const close = transport.close.bind(transport);
  transport.close = async () => {
    await close();
    await node.stop();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  };
  return transport;
};

export const tempDir = (): { path: string; remove: () => void } => {
  const path = mkdtempSync(join(tmpdir(), "celerity-node-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
};
