// Key pairs and envelopes for the signing tests.
import type { Envelope } from "../../broker/envelope.ts";
import { generateKeyPair, publicKeyOf, type KeyPair } from "./signing-keys.ts";

/** A new key pair, and its public key as a trusted key. */
export const freshKeys = (): { pair: KeyPair; trusted: ReturnType<typeof publicKeyOf> } => {
  const pair = generateKeyPair();
  return { pair, trusted: publicKeyOf(pair.publicKey, "test key") };
};

export const sampleEnvelope = (overrides: Partial<Envelope> = {}): Envelope => ({
  id: "0b8a6f5e-3b0c-4f3a-9d1e-2a7c0f6b1e11",
  exchange: "",
  routingKey: "celery",
  priority: 0,
  headers: { task: "add", retries: 0 },
  body: new Uint8Array([0x91, 0x92, 0x02, 0x02]),
  ...overrides,
});
