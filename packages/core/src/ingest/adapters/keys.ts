/** Standard Webhooks `v1a` public keys: `whpk_<base64 raw 32-byte Ed25519 key>`, or a PEM SubjectPublicKeyInfo. */
import { createPublicKey, type KeyObject } from "node:crypto";

const publicKeyPrefix = "whpk_";
/** DER SubjectPublicKeyInfo header for an Ed25519 key (RFC 8410): the raw 32 bytes follow. */
const ed25519SpkiPrefix = Buffer.from("302a300506032b6570032100", "hex");

/** The Ed25519 key the text names; undefined when it is not one (checked when a source is created, too). */
export function ed25519PublicKey(publicKey: string): KeyObject | undefined {
  try {
    if (publicKey.startsWith(publicKeyPrefix)) {
      const encoded = publicKey.slice(publicKeyPrefix.length);
      if (!/^[A-Za-z0-9+/]{43}=?$/.test(encoded)) return undefined;
      const raw = Buffer.from(encoded, "base64");
      if (raw.length !== 32) return undefined;
      return createPublicKey({ key: Buffer.concat([ed25519SpkiPrefix, raw]), format: "der", type: "spki" });
    }
    const key = createPublicKey(publicKey);
    return key.asymmetricKeyType === "ed25519" ? key : undefined;
  } catch {
    return undefined;
  }
}
