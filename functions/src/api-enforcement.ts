/** What enforcement points call and what checks them (`/v1/feed*`, `/v1/flows`, `/v1/audit*`, `/v1/live`): the one API function holding the feed key. */
import { enforcementRoutes } from "@simroot/api/groups/enforcement";
import { feedKmsKeyId, kmsSigner, lazy } from "@simroot/core";
import { apiFunction } from "./lib/api-function.ts";
import { lambdaPorts } from "./lib/ports.ts";

// Kept once it works; a transient KMS failure is retried on the next request, not cached.
const feedSigner = lazy(async () => {
  const keyId = feedKmsKeyId();
  if (!keyId) throw new Error("SIMROOT_FEED_KMS_KEY_ID is not set: the feed cannot be signed");
  return kmsSigner(keyId);
});

export const { app, handler } = apiFunction(enforcementRoutes, { ports: lambdaPorts, feedSigner });
