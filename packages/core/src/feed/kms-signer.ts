/**
 * The production signer: an AWS KMS key of spec ECC_NIST_EDWARDS25519 (sign and verify),
 * signing with ED25519_SHA_512 over the raw head bytes, so the private key never leaves KMS.
 * PEPs verify with the same Ed25519 public key they would pin for a local key.
 * kms-signer.test.ts runs the real client against a loopback server that speaks KMS's JSON
 * protocol; AWS itself is not exercised here (no AWS account on this machine).
 */
import { GetPublicKeyCommand, KMSClient, SignCommand } from "@aws-sdk/client-kms";
import { createPublicKey } from "node:crypto";
import { sdkClientSettings } from "../store/sdk-settings.ts";
import { keyIdOf, type FeedSigner } from "./signer.ts";

export async function kmsSigner(kmsKeyId: string, client = new KMSClient(sdkClientSettings())): Promise<FeedSigner> {
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

/**
 * The signer a warm function keeps: built on first use and kept once it works. A failure
 * (KMS throttling, a timeout) is not kept: the next request tries KMS again, so one transient
 * failure cannot poison the container until it is recycled.
 */
export function lazySigner(create: () => Promise<FeedSigner>): () => Promise<FeedSigner> {
  let signer: Promise<FeedSigner> | undefined;
  return () => {
    signer ??= create().catch((error: unknown) => {
      signer = undefined;
      throw error;
    });
    return signer;
  };
}
