import { environmentSealer, type Ports } from "@simroot/core";
import { lambdaPorts } from "./ports.ts";

let built: Ports | undefined;

/**
 * `lambdaPorts` with the sealer of kept secrets (the KMS key the environment names): for the
 * functions that create or use webhook signing secrets, the only ones granted that key.
 */
export const lambdaPortsWithSecrets = (): Ports => {
  if (built) return built;
  const secrets = environmentSealer();
  built = { ...lambdaPorts(), ...(secrets ? { secrets } : {}) };
  return built;
};
