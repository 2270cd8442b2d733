/**
 * The production signer: an AWS KMS key of spec ECC_NIST_EDWARDS25519 (sign and verify),
 * signing with ED25519_SHA_512 over the raw head bytes, so the private key never leaves KMS.
 * PEPs verify with the same Ed25519 public key they would pin for a local key.
 * kms-signer.test.ts runs the real client against a loopback server that speaks KMS's JSON
 * protocol; AWS itself is not exercised here (no AWS account on this machine).
 */
import type { KMSClient as Kms } from "@aws-sdk/client-kms";
import { createPublicKey } from "node:crypto";
import { sdkClientSettings } from "../store/sdk-settings.ts";
import { keyIdOf, type FeedSigner } from "./signer.ts";

export async function kmsSigner(kmsKeyId: string, given?: Kms): Promise<FeedSigner> {
  // Loaded here, not at module init (`lazy` in store/sdk-settings.ts): only a run that signs needs it.
  const { GetPublicKeyCommand, KMSClient, SignCommand } = await import("@aws-sdk/client-kms");
  const client = given ?? new KMSClient(sdkClientSettings());
  const { PublicKey } = await client.send(new GetPublicKeyCommand({ KeyId: kmsKeyId }));
  if (!PublicKey) throw new Error(`KMS key ${kmsKeyId} has no public key`);
  const publicKey = createPublicKey({ key: Buffer.from(PublicKey), format: "der", type: "spki" });
  return {
    keyId: keyIdOf(publicKey),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    async sign(bytes) {
      const { Signature } = await client.send(
        new SignCommand({ KeyId: kmsKeyId, Message: bytes, MessageType: "RAW", SigningAlgorithm: "ED25519_SHA_512" }),
      );
      if (!Signature) throw new Error("KMS returned no signature");
      return Buffer.from(Signature).toString("base64");
    },
  };
}
