/**
 * The audit archive in AWS: once a day, every tenant's audit trail that expires within the
 * lead (core `audit/archive.ts`) is walked, verified, and written to the archive bucket, and the
 * tenant's signed archive checkpoint moves past it; DynamoDB's TTL removes it later. A tenant that
 * cannot be archived fails the run (the error alarm), the others are archived anyway.
 */
import { S3Client } from "@aws-sdk/client-s3";
import {
  archiveAllTenants,
  auditArchiveBucket,
  auditRetentionDays,
  documentClient,
  dynamoSettings,
  feedKmsKeyId,
  kmsSigner,
  s3ArchiveStore,
  sdkClientSettings,
  tableNames,
  type ArchivePorts,
  type ArchiveStore,
  type FeedSigner,
} from "@simroot/core";
import { logger } from "./lib/telemetry.ts";

export interface ArchiverDependencies {
  readonly ports: ArchivePorts;
  readonly signer: FeedSigner;
  readonly store: ArchiveStore;
  readonly retentionDays: number;
}

export const handlerFor = (dependencies: () => Promise<ArchiverDependencies>) => async () => {
  const { ports, signer, store, retentionDays } = await dependencies();
  const results = await archiveAllTenants(ports, signer, store, { retentionDays });
  const summary = {
    tenants: results.length,
    objects: results.reduce((sum, result) => sum + result.objects.length, 0),
    records: results.reduce((sum, result) => sum + result.records, 0),
    versions: results.reduce((sum, result) => sum + result.versions, 0),
  };
  logger.info("audit archived", summary);
  return summary;
};

let built: Promise<ArchiverDependencies> | undefined;
export const handler = handlerFor(
  () =>
    (built ??= (async () => {
      const bucket = auditArchiveBucket();
      const keyId = feedKmsKeyId();
      if (!bucket || !keyId) throw new Error("SIMROOT_AUDIT_ARCHIVE_BUCKET and SIMROOT_FEED_KMS_KEY_ID must be set");
      return {
        ports: { db: documentClient(dynamoSettings()), tables: tableNames(), now: () => new Date() },
        signer: await kmsSigner(keyId),
        store: s3ArchiveStore(new S3Client(sdkClientSettings()), bucket),
        retentionDays: auditRetentionDays(),
      };
    })().catch((error: unknown) => {
      built = undefined;
      throw error;
    })),
);
