/**
 * The KMS signer up to the network boundary: the real @aws-sdk/client-kms client, SigV4 and
 * all, talks to a loopback server that answers KMS's JSON protocol (TrentService.GetPublicKey
 * and Sign) with an Ed25519 key of its own. No AWS account is needed; what is not exercised
 * is AWS itself.
 */
import { generateKeyPairSync, sign, verify } from "node:crypto";
import { startLoopbackKms } from "../store/kms-loopback.test-support.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signHead } from "./feed.ts";
import { kmsSigner } from "./kms-signer.ts";
import { keyIdOf } from "./signer.ts";
import { headBytes } from "./wire.ts";

const keyArn = "arn:aws:kms:eu-west-1:111122223333:key/feed-test";
const { privateKey, publicKey } = generateKeyPairSync("ed25519");
let kms: Awaited<ReturnType<typeof startLoopbackKms>>;

beforeAll(async () => {
  kms = await startLoopbackKms(keyArn, {
    GetPublicKey: () => [
      200,
      {
        KeyId: keyArn,
        KeySpec: "ECC_NIST_EDWARDS25519",
        KeyUsage: "SIGN_VERIFY",
        SigningAlgorithms: ["ED25519_SHA_512", "ED25519_PH_SHA_512"],
        PublicKey: publicKey.export({ type: "spki", format: "der" }).toString("base64"),
      },
    ],
    Sign: (body) => {
      if (body.MessageType !== "RAW" || body.SigningAlgorithm !== "ED25519_SHA_512")
        return [400, { __type: "ValidationException", message: "unexpected signing request" }];
      const signature = sign(null, Buffer.from(body.Message!, "base64"), privateKey);
      return [200, { KeyId: keyArn, Signature: signature.toString("base64"), SigningAlgorithm: "ED25519_SHA_512" }];
    },
  });
});
afterAll(() => kms.close());

const client = () => kms.client();
const seen = () => kms.seen;

describe("the KMS feed signer", () => {
  it("signs feed heads with the KMS key, so that a PEP pinning its public key verifies them", async () => {
    const signer = await kmsSigner(keyArn, client());
    expect(signer.keyId).toBe(keyIdOf(publicKey));
    expect(signer.publicKeyPem).toBe(publicKey.export({ type: "spki", format: "pem" }).toString());

    const signed = await signHead(
      signer,
      { tenantId: "ten_kms", epoch: 0, kind: "delta", since: 4, version: 5, page: 0, last: true },
      [],
      new Date(),
    );
    expect(verify(null, headBytes(signed.head), publicKey, Buffer.from(signed.signature, "base64"))).toBe(true);
    expect(signed.keyId).toBe(signer.keyId);

    const request = seen().find((each) => each.target === "TrentService.Sign")!;
    expect(request.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/kms\/aws4_request/);
    expect(Buffer.from(String(request.body.Message), "base64").equals(headBytes(signed.head))).toBe(true);
  });

  it("fails to start on a key KMS does not know, with KMS's error", async () => {
    await expect(kmsSigner(`${keyArn}-gone`, client())).rejects.toMatchObject({ name: "NotFoundException" });
  });
});
