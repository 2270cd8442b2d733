import { createApp } from "@simroot/api";
import { busName, feedKmsKeyId, kmsSigner, lazySigner, storeHealth } from "@simroot/core";
import { lambdaHandler } from "./lib/lambda-http.ts";
import { lambdaPorts } from "./lib/ports.ts";
import { lambdaPortsWithSecrets } from "./lib/secrets.ts";

// Kept once it works; a transient KMS failure is retried on the next request, not cached.
const feedSigner = lazySigner(async () => {
  const keyId = feedKmsKeyId();
  if (!keyId) throw new Error("SIMROOT_FEED_KMS_KEY_ID is not set: the feed cannot be signed");
  return kmsSigner(keyId);
});

export const handler = lambdaHandler(
  createApp({
    ports: lambdaPortsWithSecrets,
    feedSigner,
    logRequests: true,
    health: {
      store: () => storeHealth(lambdaPorts()),
      // EventBridge has no cheap read probe with PutEvents-only permissions: report what is configured.
      bus: async () => ({ status: "ok", detail: { kind: "eventbridge", bus: busName(), probed: false } }),
    },
  }).fetch,
);
