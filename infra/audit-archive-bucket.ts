/**
 * The audit archive: a versioned S3 bucket that the hourly archiver fills (core
 * `audit/archive.ts`, `functions/src/audit-archiver.ts`) with every tenant's audit trail before
 * DynamoDB's TTL removes it. In production it is retained on removal and locked in compliance
 * mode: an archived object can be neither overwritten nor deleted, by anyone, for
 * `stage.archiveLockYears`.
 */
import { isProduction, stage } from "./stage";

export const auditArchive = new sst.aws.Bucket("AuditArchive", {
  versioning: true,
  transform: {
    bucket: (args, opts) => {
      args.objectLockEnabled = isProduction;
      args.forceDestroy = !isProduction;
      opts.retainOnDelete = isProduction;
    },
  },
});

if (isProduction) {
  new aws.s3.BucketObjectLockConfiguration("AuditArchiveLock", {
    bucket: auditArchive.name,
    rule: { defaultRetention: { mode: "COMPLIANCE", years: stage.archiveLockYears } },
  });
}

/** `SIMROOT_AUDIT_ARCHIVE_BUCKET`, what core's `auditArchiveBucket()` reads. */
export const auditArchiveEnvironment = { SIMROOT_AUDIT_ARCHIVE_BUCKET: auditArchive.name };
