/**
 * The audit archive in AWS: every hour, every tenant's audit trail that expires within the
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
  isSimrootError,
  environmentFeedNotifier,
  kmsSigner,
  s3ArchiveStore,
  sdkClientSettings,
  tableNames,
  type ArchivePorts,
  type ArchiveStore,
  type FeedSigner,
} from "@simroot/core";
import type { Context } from "aws-lambda";
import { logger, metricsSink, publishMetrics } from "./lib/telemetry.ts";

export interface ArchiverDependencies {
  readonly ports: ArchivePorts;
  readonly signer: FeedSigner;
  readonly store: ArchiveStore;
  readonly retentionDays: number;
}

/** A new object is not started in the last minute of the function's time. */
const stopBeforeTimeoutMs = 60_000;

export const handlerFor =
  (dependencies: () => Promise<ArchiverDependencies>) => async (_event?: unknown, context?: Pick<Context, "getRemainingTimeInMillis">) => {
    if (context && "awsRequestId" in context) logger.addContext(context as Context);
    const { ports, signer, store, retentionDays } = await dependencies();
    const deadline = context ? Date.now() + context.getRemainingTimeInMillis() - stopBeforeTimeoutMs : undefined;
    // The margin is printed by every run that measured it, failed or not (the whole retention when nothing waits), and
    // by none that did not: the alarm treats an hour with no figure as breaching (the archiver not running, failing
    // before it read, or cut short by its deadline).
    const margin = (seconds: number | undefined) => {
      if (seconds !== undefined) metricsSink.add("AuditArchiveMarginSeconds", seconds);
    };
    try {
      const { results, marginSeconds } = await archiveAllTenants(ports, signer, store, {
        retentionDays,
        ...(deadline ? { deadline } : {}),
      });
      margin(marginSeconds);
      const margins = results.flatMap((result) => (result.marginSeconds === undefined ? [] : [result.marginSeconds]));
      const summary = {
        tenants: results.length,
        objects: results.reduce((sum, result) => sum + result.objects.length, 0),
        records: results.reduce((sum, result) => sum + result.records, 0),
        versions: results.reduce((sum, result) => sum + result.versions, 0),
        ...(margins.length > 0 ? { marginDays: Math.min(...margins) / 86_400 } : {}),
      };
      logger.info("audit archived", summary);
      return summary;
    } catch (error) {
      if (isSimrootError(error) && error.code === "audit.archive_failed")
        margin((error.detail as { marginSeconds?: number } | undefined)?.marginSeconds);
      throw error;
    } finally {
      publishMetrics();
    }
  };

let built: Promise<ArchiverDependencies> | undefined;
export const handler = handlerFor(
  () =>
    (built ??= (async () => {
      const bucket = auditArchiveBucket();
      const keyId = feedKmsKeyId();
      if (!bucket || !keyId) throw new Error("SIMROOT_AUDIT_ARCHIVE_BUCKET and SIMROOT_FEED_KMS_KEY_ID must be set");
      // A head it moves forward is announced on the feed's push channel (IoT Core), as the sequencing would have.
      const feedNotifier = environmentFeedNotifier((error) => logger.warn("feed notice not published", { error: String(error) }));
      return {
        ports: {
          db: documentClient(dynamoSettings()),
          tables: tableNames(),
          now: () => new Date(),
          ...(feedNotifier ? { feedNotifier } : {}),
        },
        signer: await kmsSigner(keyId),
        store: s3ArchiveStore(new S3Client(sdkClientSettings()), bucket),
        retentionDays: auditRetentionDays(),
      };
    })().catch((error: unknown) => {
      built = undefined;
      throw error;
    })),
);
