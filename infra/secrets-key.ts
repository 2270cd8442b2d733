/**
 * The key that seals the secrets simroot keeps (outbound webhooks' signing keys): a symmetric
 * KMS key, used with `Encrypt`/`Decrypt` and the record's tenant and id as the encryption
 * context (core `secrets/sealer.ts`), rotated yearly by KMS. Retained when production is
 * removed: deleting it would make every stored subscription's secret unreadable.
 */
import { isProduction } from "./stage";

export const secretsKey = new aws.kms.Key(
  "SecretsKey",
  {
    description: `simroot ${$app.stage}: seals kept secrets (webhook signing keys)`,
    customerMasterKeySpec: "SYMMETRIC_DEFAULT",
    keyUsage: "ENCRYPT_DECRYPT",
    enableKeyRotation: true,
    deletionWindowInDays: isProduction ? 30 : 7,
  },
  { retainOnDelete: isProduction },
);

/** `SIMROOT_SECRETS_KMS_KEY_ID`, what core's `secretsKmsKeyId()` reads. */
export const secretsKeyEnvironment = { SIMROOT_SECRETS_KMS_KEY_ID: secretsKey.arn };
