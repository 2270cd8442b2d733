import { createApp } from "@simroot/api";
import { busName, environmentRedeliver, feedKmsKeyId, kmsSigner, lazySigner, storeHealth, type Ports } from "@simroot/core";
import { lambdaHandler } from "./lib/lambda-http.ts";
import { lambdaPorts } from "./lib/ports.ts";
import { lambdaPortsWithSecrets } from "./lib/secrets.ts";
import { logger } from "./lib/telemetry.ts";

// Kept once it works; a transient KMS failure is retried on the next request, not cached.
const feedSigner = lazySigner(async () => {
  const keyId = feedKmsKeyId();
  if (!keyId) throw new Error("SIMROOT_FEED_KMS_KEY_ID is not set: the feed cannot be signed");
  return kmsSigner(keyId);
});

// The API also hands dead letters back to their consumers (Lambda Invoke, the function named per rule).
let ports: Ports | undefined;
const apiPorts = (): Ports => {
  if (ports) return ports;
  const redeliver = environmentRedeliver();
  ports = { ...lambdaPortsWithSecrets(), ...(redeliver ? { redeliver } : {}) };
  return ports;
};

export const handler = lambdaHandler(
  createApp({
    ports: apiPorts,
    feedSigner,
    logRequests: true,
    log: logger,
    health: {
      store: () => storeHealth(lambdaPorts()),
      // EventBridge has no cheap read probe with PutEvents-only permissions: report what is configured.
      bus: async () => ({ status: "ok", detail: { kind: "eventbridge", bus: busName(), probed: false } }),
    },
  }).fetch,
);
