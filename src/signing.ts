/**
 * celerity/signing: keys for signed and encrypted messages, from code (the
 * `celerity keygen` command writes the same files). An app signs with
 * `createApp({ signing: { key, trusted } })`; see docs/security.md.
 *
 * @example
 * import { writeKeyPair } from "celerity/signing";
 *
 * const { secretPath, publicPath, keyId } = writeKeyPair("./keys/producer");
 * // createApp({ signing: { key: secretPath, trusted: [publicPath] } })
 *
 * @module
 */
export {
  generateKeyPair,
  writeKeyPair,
  readSecretKey,
  readPublicKey,
  readPublicKeys,
  keyIdOf,
  type KeyPair,
  type PublicKey,
} from "../runtime/signing/signing-keys.ts";
export { generateBoxKey, readBoxKey } from "../runtime/signing/payload-box.ts";
export { SignatureError, SigningConfigError } from "../runtime/signing/signing-errors.ts";
export type { SigningOptions } from "../runtime/signing/signing-options.ts";
