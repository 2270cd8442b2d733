/**
 * A transient KMS failure must not poison a warm function: the real KMS client against a
 * loopback server that fails GetPublicKey once (500, which the SDK retries) and then answers.
 */
import { generateKeyPairSync } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { KMSClient } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, expect, it } from "vitest";
import { lazy } from "../store/sdk-settings.ts";
import { kmsSigner } from "./kms-signer.ts";
import { keyIdOf } from "./signer.ts";

const keyArn = "arn:aws:kms:us-east-1:111122223333:key/feed-recovery";
const { publicKey } = generateKeyPairSync("ed25519");
let failuresLeft = 0;
let server: Server;
let endpoint: string;

beforeAll(async () => {
  server = createServer(async (request, response) => {
    for await (const _ of request);
    response.setHeader("content-type", "application/x-amz-json-1.1");
    if (failuresLeft > 0) {
      failuresLeft--;
      response.writeHead(500).end(JSON.stringify({ __type: "KMSInternalException", message: "try again" }));
      return;
    }
    response
      .writeHead(200)
      .end(JSON.stringify({ KeyId: keyArn, PublicKey: publicKey.export({ type: "spki", format: "der" }).toString("base64") }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const client = () =>
  new KMSClient({ endpoint, region: "us-east-1", maxAttempts: 1, credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" } });

it("builds the signer again after a transient KMS failure instead of keeping the rejection", async () => {
  const kms = client();
  const signer = lazy(() => kmsSigner(keyArn, kms));
  failuresLeft = 1;
  await expect(signer()).rejects.toMatchObject({ name: "KMSInternalException" });
  const recovered = await signer();
  expect(recovered.keyId).toBe(keyIdOf(publicKey));
  // Once it works it is kept: no further GetPublicKey.
  failuresLeft = 5;
  expect(await signer()).toBe(recovered);
});
