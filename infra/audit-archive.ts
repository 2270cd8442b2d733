/**
 * The hourly audit archiver (core `audit/archive.ts`, `functions/src/audit-archiver.ts`): what
 * expires within the lead is walked, verified and written to the archive bucket
 * (audit-archive-bucket.ts). Its permissions come from the platform definition, like every function's.
 */
import { functionArgs } from "./functions";

export const auditArchiver = new sst.aws.Cron("AuditArchiver", {
  schedule: "rate(1 hour)",
  function: functionArgs("auditArchiver"),
});
