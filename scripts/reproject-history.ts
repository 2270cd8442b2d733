/**
 * Writes tenants' history again from their audit records (core outbox/reproject.ts): each record listed under its
 * subject, its IP lease edges as lease items. For history the stream's history reader never wrote (its writes failing
 * for the 24 hours records stay on the stream: the `HistoryIteratorAge` alarm says so long before), or removed by hand.
 * Safe beside the running reader: the same items, put again. Then sequences what of the records the feed head does not
 * cover, as that reader (the feed's backstop) would have, and announces it on the push channel when one is configured.
 *
 *   npm run history:reproject -- <tenantId> [<tenantId> ...]
 *
 * Against the stage whose tables `SIMROOT_TABLE_*` name (their defaults otherwise), with the shell's AWS credentials
 * (audit `Query` and `BatchWriteItem`, identity `BatchWriteItem`; to sequence, what the history function is granted on the
 * audit and control tables); locally `DYNAMODB_ENDPOINT=http://localhost:8000`. `SIMROOT_AUDIT_RETENTION_DAYS` must be
 * the stage's: a feed version it sequences expires by it.
 */
import { documentClient, dynamoSettings, environmentFeedNotifier, reprojectHistory, tableNames } from "@simroot/core";

const tenants = process.argv.slice(2);
if (tenants.length === 0) {
  console.error("usage: npm run history:reproject -- <tenantId> [<tenantId> ...]");
  process.exit(2);
}
const feedNotifier = environmentFeedNotifier((error) => console.warn(`feed notice not published: ${String(error)}`));
const ports = { db: documentClient(dynamoSettings()), tables: tableNames(), ...(feedNotifier ? { feedNotifier } : {}) };
for (const tenantId of tenants) {
  try {
    const reached = await reprojectHistory(ports, tenantId);
    console.log(`${tenantId}: history written again up to ${reached.map((seq, shard) => `s${shard}:${seq}`).join(" ")}`);
  } catch (error) {
    // One tenant's failure (its feed blocked, the store refusing) does not stop the others'.
    console.error(`${tenantId}: ${String((error as Error)?.message ?? error)}`);
    process.exitCode = 1;
  }
}
ports.db.destroy();
