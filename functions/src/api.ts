import { createApp } from "@simroot/api";
import { lambdaHandler } from "./lib/lambda-http.ts";
import { busName, feedKmsKeyId, kmsSigner, lazySigner, runtimePorts, storeHealth } from "@simroot/core";

// Kept once it works; a transient KMS failure is retried on the next request, not cached.
const feedSigner = lazySigner(async () => {
  const keyId = feedKmsKeyId();
  if (!keyId) throw new Error("SIMROOT_FEED_KMS_KEY_ID is not set: the feed cannot be signed");
  return kmsSigner(keyId);
});

export const handler = lambdaHandler(
  createApp({
    ports: runtimePorts,
    feedSigner,
    logRequests: true,
    health: {
      store: () => storeHealth(runtimePorts()),
      // EventBridge has no cheap read probe with PutEvents-only permissions: report what is configured.
      bus: async () => ({ status: "ok", detail: { kind: "eventbridge", bus: busName(), probed: false } }),
    },
  }).fetch,
);
