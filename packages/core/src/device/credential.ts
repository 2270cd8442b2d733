import { createHash, createPublicKey, X509Certificate } from "node:crypto";
import * as z from "zod";

/**
 * The fingerprint of an IoT SAFE credential: SHA-256 over the DER SubjectPublicKeyInfo of the
 * key generated inside the SIM applet, from its X.509 certificate or its public key (PEM).
 * Returns undefined for anything that is neither.
 */
export function spkiFingerprint(pem: string): string | undefined {
  try {
    const key = pem.includes("BEGIN CERTIFICATE") ? new X509Certificate(pem).publicKey : createPublicKey(pem);
    return createHash("sha256")
      .update(key.export({ type: "spki", format: "der" }))
      .digest("hex");
  } catch {
    return undefined;
  }
}

export const credentialPemSchema = z
  .string()
  .max(16_384)
  .refine((pem) => spkiFingerprint(pem) !== undefined, "not a PEM X.509 certificate or public key")
  .meta({
    description: "the IoT SAFE credential: its X.509 client certificate or public key, PEM; only its SPKI SHA-256 fingerprint is kept",
  });

export const fingerprintSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, "a SHA-256 fingerprint is 64 lower-case hex digits")
  .meta({ description: "SHA-256 of the credential's SubjectPublicKeyInfo, hex" });
