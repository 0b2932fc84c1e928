// `celerity keygen`: write an ed25519 key pair for signed messages, or a key for
// payload encryption.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { boxKeyIdOf, generateBoxKey } from "../../runtime/signing/payload-box.ts";
import { writeKeyPair } from "../../runtime/signing/signing-keys.ts";
import { parseCommandLine, UsageError } from "./support/options.ts";

export const KEYGEN_HELP = `celerity keygen: write an ed25519 key pair for signed messages

Usage:
  celerity keygen --out ./keys/producer          writes keys/producer.secret (mode 0600)
                                                 and keys/producer.pub
  celerity keygen --out ./keys/payload --encryption
                                                 writes keys/payload.key (mode 0600), a
                                                 secretbox key for payload encryption

  celerity keygen --help                         show this help

Give the .secret file to the app that signs (signing.key) and the .pub file
to every worker that should trust it (signing.trusted). See docs/security.md.
`;

/** Write a key pair (or an encryption key); resolves to the exit code. */
export const runKeygen = async (argv: readonly string[]): Promise<number> => {
  const { values } = parseCommandLine("keygen", argv, { out: { type: "string" }, encryption: { type: "boolean" } });
  if (values.help) {
    process.stdout.write(KEYGEN_HELP);
    return 0;
  }
  if (values.out === undefined || values.out === "")
    throw new UsageError("missing --out <path> (celerity keygen --out ./keys/producer)");
  if (values.encryption) {
    const path = resolve(`${values.out}.key`);
    if (existsSync(path)) throw new Error(`${path} already exists; remove it first or choose another --out`);
    const key = generateBoxKey();
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${Buffer.from(key).toString("base64")}\n`, { mode: 0o600, flag: "wx" });
    process.stdout.write(
      `wrote ${path} (encryption key ${boxKeyIdOf(key).toString("hex")}); share it only with the apps of this deployment\n`,
    );
    return 0;
  }
  const { secretPath, publicPath, keyId } = writeKeyPair(values.out);
  process.stdout.write(`wrote ${secretPath} (keep it secret) and ${publicPath} (key id ${keyId})\n`);
  return 0;
};
