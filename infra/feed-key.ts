/**
 * The feed's signing key: an asymmetric KMS key of spec ECC_NIST_EDWARDS25519, used with
 * ED25519_SHA_512 (`kmsSigner` in core). The private half never leaves KMS; the API reads the
 * public half once per container (`kms:GetPublicKey`) and signs heads with `kms:Sign`. PEPs pin
 * the public key `/v1/feed/keys` serves. Retained when production is removed: deleting it
 * would orphan every pinned PEP.
 */
import { isProduction } from "./stage";

export const feedKey = new aws.kms.Key(
  "FeedSigningKey",
  {
    description: `simroot ${$app.stage}: signs the enforcement feed (Ed25519)`,
    customerMasterKeySpec: "ECC_NIST_EDWARDS25519",
    keyUsage: "SIGN_VERIFY",
    deletionWindowInDays: isProduction ? 30 : 7,
  },
  { retainOnDelete: isProduction },
);

/** `SIMROOT_FEED_KMS_KEY_ID`, what core's `feedKmsKeyId()` reads. */
export const feedKeyEnvironment = { SIMROOT_FEED_KMS_KEY_ID: feedKey.arn };
