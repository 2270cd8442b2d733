/**
 * The sealers. The KMS one up to the network boundary: the real @aws-sdk/client-kms client
 * (SigV4 and all) talks to a loopback server answering KMS's JSON protocol (TrentService.Encrypt
 * and Decrypt), which, as KMS does, refuses to decrypt under another encryption context. What
 * is not exercised is AWS itself (no AWS account on this machine).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLoopbackKms } from "../store/kms-loopback.test-support.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileSealer, kmsSealer, memorySealer } from "./sealer.ts";

const keyArn = "arn:aws:kms:eu-west-1:111122223333:key/secrets-test";
const binding = { tenantId: "ten_a", record: "webhook/webhook_1" };
let kms: Awaited<ReturnType<typeof startLoopbackKms>>;

beforeAll(async () => {
  // The stand-in key: the encryption context is the ciphertext's authenticated data, so it opens only under the same one, as in KMS.
  const key = randomBytes(32);
  const context = (value: unknown) => Buffer.from(JSON.stringify(value ?? {}));
  kms = await startLoopbackKms(keyArn, {
    Encrypt: (body) => {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv).setAAD(context(body.EncryptionContext));
      const sealed = Buffer.concat([cipher.update(Buffer.from(body.Plaintext!, "base64")), cipher.final()]);
      return [200, { KeyId: keyArn, CiphertextBlob: Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString("base64") }];
    },
    Decrypt: (body) => {
      const blob = Buffer.from(body.CiphertextBlob!, "base64");
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, blob.subarray(0, 12)).setAAD(context(body.EncryptionContext));
        decipher.setAuthTag(blob.subarray(12, 28));
        const plaintext = Buffer.concat([decipher.update(blob.subarray(28)), decipher.final()]);
        return [200, { KeyId: keyArn, Plaintext: plaintext.toString("base64") }];
      } catch {
        return [400, { __type: "InvalidCiphertextException", message: "" }];
      }
    },
  });
});
afterAll(() => kms.close());

describe("the KMS sealer", () => {
  it("seals with Encrypt under the record's encryption context, and opens only under the same one", async () => {
    const sealer = kmsSealer(keyArn, kms.client());
    const sealed = await sealer.seal("whsec_c2VjcmV0", binding);
    expect(sealed).toMatch(/^v1\.kms\./);
    expect(sealed).not.toContain("c2VjcmV0");
    expect(kms.seen.at(-1)).toMatchObject({ target: "TrentService.Encrypt", body: { EncryptionContext: binding } });
    expect(await sealer.open(sealed, binding)).toBe("whsec_c2VjcmV0");
    expect(kms.seen.at(-1)).toMatchObject({ target: "TrentService.Decrypt", body: { EncryptionContext: binding } });
    await expect(sealer.open(sealed, { ...binding, tenantId: "ten_b" })).rejects.toMatchObject({ name: "InvalidCiphertextException" });
  });
});

describe("the local sealer", () => {
  it("opens only what it sealed, for the same binding", async () => {
    const sealer = memorySealer();
    const sealed = await sealer.seal("whsk_private", binding);
    expect(await sealer.open(sealed, binding)).toBe("whsk_private");
    await expect(sealer.open(sealed, { ...binding, record: "webhook/webhook_2" })).rejects.toThrow();
    await expect(memorySealer().open(sealed, binding)).rejects.toThrow();
  });

  it("keeps its key in a file only its owner reads, shared by every process of the data folder", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "simroot-sealer-")), "secrets-key");
    const [first, second] = await Promise.all([fileSealer(path), fileSealer(path)]);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(Buffer.from((await readFile(path, "utf8")).trim(), "base64")).toHaveLength(32);
    expect(await second.open(await first.seal("whsec_x", binding), binding)).toBe("whsec_x");
  });

  it("never reads a key file half written when processes of one data folder start at once", async () => {
    const folder = await mkdtemp(join(tmpdir(), "simroot-sealer-race-"));
    for (let round = 0; round < 40; round++) {
      const sealers = await Promise.all(Array.from({ length: 6 }, () => fileSealer(join(folder, `key-${round}`))));
      const sealed = await sealers[0]!.seal("whsec_x", binding);
      for (const sealer of sealers) expect(await sealer.open(sealed, binding)).toBe("whsec_x");
    }
    // Only the key files: no file a process wrote its key to first is left behind.
    expect((await readdir(folder)).sort()).toEqual(Array.from({ length: 40 }, (_, round) => `key-${round}`).sort());
  });
});
