/**
 * The signer port of the feed: Ed25519 over the canonical bytes of a head. Locally the key
 * lives in a PEM file under the data folder (created on first start, mode 0600); tests use a
 * key in memory. Production uses a KMS-held key behind the same port (see kms-signer.ts).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { keyFile } from "../secrets/key-file.ts";

export interface FeedSigner {
  readonly keyId: string;
  /** The Ed25519 public key, SPKI PEM: what enforcement points pin. */
  readonly publicKeyPem: string;
  /** Base64 signature of `bytes`. */
  sign(bytes: Buffer): Promise<string>;
}

/** A short, stable name for a public key: the first 16 hex digits of its SPKI SHA-256. */
export const keyIdOf = (publicKey: KeyObject) =>
  `ed25519:${createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 16)}`;

export function keySigner(privateKey: KeyObject): FeedSigner {
  const publicKey = createPublicKey(privateKey);
  return {
    keyId: keyIdOf(publicKey),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    sign: async (bytes) => sign(null, bytes, privateKey).toString("base64"),
  };
}

export const memorySigner = (): FeedSigner => keySigner(generateKeyPairSync("ed25519").privateKey);

/** The signer whose key is the PEM file at `path`, generated there on first use. */
export async function fileSigner(path: string): Promise<FeedSigner> {
  const pem = await keyFile(path, () => generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString());
  return keySigner(createPrivateKey(pem));
}
