import { handle } from "hono/aws-lambda";
import { createApp } from "@simroot/api";
import { busName, feedKmsKeyId, kmsSigner, storeHealth, type FeedSigner } from "@simroot/core";
import { lambdaPorts } from "./lib/ports.ts";

let signer: Promise<FeedSigner> | undefined;
const feedSigner = () => {
  const keyId = feedKmsKeyId();
  if (!keyId) throw new Error("SIMROOT_FEED_KMS_KEY_ID is not set: the feed cannot be signed");
  signer ??= kmsSigner(keyId);
  return signer;
};

export const handler = handle(
  createApp({
    ports: lambdaPorts,
    feedSigner,
    logRequests: true,
    health: {
      store: () => storeHealth(lambdaPorts()),
      // EventBridge has no cheap read probe with PutEvents-only permissions: report what is configured.
      bus: async () => ({ status: "ok", detail: { kind: "eventbridge", bus: busName(), probed: false } }),
    },
  }),
);
