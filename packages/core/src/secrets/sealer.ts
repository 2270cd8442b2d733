/**
 * Secrets simroot must hold in a form it can use again (an outbound webhook's signing key) are
 * stored sealed, never in plaintext: whoever reads the table (a backup, an export, a
 * misdirected scan) learns nothing, and a sealed value is bound to the record it belongs to
 * (tenant and record), so it does not open when copied onto another.
 *
 * In AWS the sealer is a symmetric KMS key (`Encrypt`/`Decrypt` with the binding as the
 * encryption context: KMS refuses a mismatch and CloudTrail logs every use); locally it is
 * AES-256-GCM with a key file under the data folder (the binding as additional data).
 * kms-sealer.test.ts runs the real KMS client against a loopback server speaking KMS's JSON
 * protocol; AWS itself is not exercised here (no AWS account on this machine).
 */
import type { KMSClient as Kms } from "@aws-sdk/client-kms";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { secretsKeyFile, secretsKmsKeyId } from "../config.ts";
import { canonicalJson } from "../ledger/chain.ts";
import { lazy, sdkClientSettings } from "../store/sdk-settings.ts";
import { keyFile } from "./key-file.ts";

/** What a sealed value is bound to: it opens only with the same binding. */
export interface SecretBinding {
  readonly tenantId: string;
  /** `<kind>/<id>` of the record holding it. */
  readonly record: string;
}

export interface SecretSealer {
  /** The sealed form of `plaintext`, bound to `binding`: what is stored. */
  seal(plaintext: string, binding: SecretBinding): Promise<string>;
  /** The plaintext of a sealed value; throws when it was sealed for another binding or by another key. */
  open(sealed: string, binding: SecretBinding): Promise<string>;
}

const localPrefix = "v1.aesgcm.";
const kmsPrefix = "v1.kms.";

/** AES-256-GCM with `key` (32 bytes); the binding is the additional authenticated data. */
export function keySealer(key: Buffer): SecretSealer {
  if (key.length !== 32) throw new Error("a secrets key is 32 bytes");
  return {
    async seal(plaintext, binding) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      cipher.setAAD(Buffer.from(canonicalJson(binding)));
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      return `${localPrefix}${Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64")}`;
    },
    async open(sealed, binding) {
      if (!sealed.startsWith(localPrefix)) throw new Error("not a value this key sealed");
      const bytes = Buffer.from(sealed.slice(localPrefix.length), "base64");
      const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, 12));
      decipher.setAAD(Buffer.from(canonicalJson(binding)));
      decipher.setAuthTag(bytes.subarray(12, 28));
      return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString("utf8");
    },
  };
}

export const memorySealer = (): SecretSealer => keySealer(randomBytes(32));

/** The sealer whose key is the file at `path` (base64, mode 0600), generated there on first use. */
export async function fileSealer(path: string): Promise<SecretSealer> {
  const text = await keyFile(path, () => `${randomBytes(32).toString("base64")}\n`);
  return keySealer(Buffer.from(text.trim(), "base64"));
}

/** A symmetric KMS key (SYMMETRIC_DEFAULT): the plaintext is at most 4 KB, the binding is the encryption context. */
export function kmsSealer(kmsKeyId: string, given?: Kms): SecretSealer {
  const context = (binding: SecretBinding) => ({ tenantId: binding.tenantId, record: binding.record });
  // The client's package is loaded on first use, not at module init (`lazy`).
  const kms = lazy(async () => {
    const { DecryptCommand, EncryptCommand, KMSClient } = await import("@aws-sdk/client-kms");
    return { client: given ?? new KMSClient(sdkClientSettings()), DecryptCommand, EncryptCommand };
  });
  return {
    async seal(plaintext, binding) {
      const { client, EncryptCommand } = await kms();
      const { CiphertextBlob } = await client.send(
        new EncryptCommand({ KeyId: kmsKeyId, Plaintext: Buffer.from(plaintext, "utf8"), EncryptionContext: context(binding) }),
      );
      if (!CiphertextBlob) throw new Error("KMS returned no ciphertext");
      return `${kmsPrefix}${Buffer.from(CiphertextBlob).toString("base64")}`;
    },
    async open(sealed, binding) {
      if (!sealed.startsWith(kmsPrefix)) throw new Error("not a value KMS sealed");
      const { client, DecryptCommand } = await kms();
      const { Plaintext } = await client.send(
        new DecryptCommand({
          KeyId: kmsKeyId,
          CiphertextBlob: Buffer.from(sealed.slice(kmsPrefix.length), "base64"),
          EncryptionContext: context(binding),
        }),
      );
      if (!Plaintext) throw new Error("KMS returned no plaintext");
      return Buffer.from(Plaintext).toString("utf8");
    },
  };
}

/** A sealer built on first use (a key file to read); a failure is not kept, the next use tries again. */
export function lazySealer(create: () => Promise<SecretSealer>): SecretSealer {
  const get = lazy(create);
  return {
    seal: async (plaintext, binding) => (await get()).seal(plaintext, binding),
    open: async (sealed, binding) => (await get()).open(sealed, binding),
  };
}

/**
 * The sealer the environment names: a KMS key in AWS (`SIMROOT_SECRETS_KMS_KEY_ID`), else a key
 * file (`SIMROOT_SECRETS_KEY_FILE`); none when neither is set. Only the functions that keep or
 * use secrets add it to their ports (they alone are granted the key).
 */
export function environmentSealer(): SecretSealer | undefined {
  const kmsKey = secretsKmsKeyId();
  if (kmsKey) return kmsSealer(kmsKey);
  const keyFile = secretsKeyFile();
  return keyFile ? lazySealer(() => fileSealer(keyFile)) : undefined;
}
