/**
 * Standard Webhooks signing (standardwebhooks.com, spec 1.0): `v1` is HMAC-SHA256 keyed with
 * the base64 part of a `whsec_` secret, `v1a` ed25519 with a key whose public half is
 * `whpk_<base64 raw 32 bytes>`; both sign `${webhook-id}.${webhook-timestamp}.${body}`.
 */
import { createHmac, createPrivateKey, generateKeyPairSync, randomBytes, sign } from "node:crypto";

export const signingSchemes = ["v1", "v1a"] as const;
export type SigningScheme = (typeof signingSchemes)[number];

export interface SigningKeys {
  /** What the subscription signs with: `whsec_...` (v1) or `whsk_<base64 PKCS#8 DER>` (v1a). */
  readonly secret: string;
  /** What the receiver verifies with: the secret itself (v1) or `whpk_...` (v1a). */
  readonly verifyWith: string;
}

export function newSigningKeys(scheme: SigningScheme): SigningKeys {
  if (scheme === "v1") {
    const secret = `whsec_${randomBytes(24).toString("base64")}`;
    return { secret, verifyWith: secret };
  }
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  return {
    secret: `whsk_${privateKey.export({ format: "der", type: "pkcs8" }).toString("base64")}`,
    verifyWith: `whpk_${raw.toString("base64")}`,
  };
}

/**
 * The headers of one signed attempt: one signature per secret, space-delimited (the spec's form for a secret being
 * rotated: a receiver accepts the delivery when any of them verifies with its secret).
 */
export function signedHeaders(scheme: SigningScheme, secrets: string | readonly string[], id: string, timestamp: number, body: string) {
  const content = `${id}.${timestamp}.${body}`;
  const signatureBy = (secret: string) =>
    scheme === "v1"
      ? `v1,${createHmac("sha256", Buffer.from(secret.slice("whsec_".length), "base64"))
          .update(content)
          .digest("base64")}`
      : `v1a,${sign(null, Buffer.from(content), createPrivateKey({ key: Buffer.from(secret.slice("whsk_".length), "base64"), format: "der", type: "pkcs8" })).toString("base64")}`;
  const signature = (typeof secrets === "string" ? [secrets] : secrets).map(signatureBy).join(" ");
  return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature, "content-type": "application/json" };
}
