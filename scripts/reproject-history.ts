/**
 * Writes tenants' history again from their audit records (core outbox/reproject.ts): each record listed under its
 * subject, its IP lease edges as lease items. For history the stream's history reader never wrote (its writes failing
 * for the 24 hours records stay on the stream: the `HistoryIteratorAge` alarm says so long before), or removed by hand.
 * Safe beside the running reader: the same items, put again. Then sequences what of the records the feed head does not
 * cover, as that reader (the feed's backstop) would have, and announces it on the push channel when one is configured.
 *
 *   npm run history:reproject -- <tenantId> [<tenantId> ...]
 *   npm run history:reproject -- --all        every tenant (what the stream discard queue's message cannot name)
 *
 * Against the stage whose tables `SIMROOT_TABLE_*` name (their defaults otherwise), with the shell's AWS credentials
 * (audit `Query` and `BatchWriteItem`, identity `BatchWriteItem`; to sequence, what the history function is granted on the
 * audit and control tables); locally `DYNAMODB_ENDPOINT=http://localhost:8000`. `SIMROOT_AUDIT_RETENTION_DAYS` must be
 * the stage's: a feed version it sequences expires by it.
 */
import { documentClient, dynamoSettings, environmentFeedNotifier, reprojectHistory, tableNames, tenantIds } from "@simroot/core";

const given = process.argv.slice(2);
const all = given.length === 1 && given[0] === "--all";
if (given.length === 0 || (!all && given.some((tenantId) => tenantId.startsWith("-")))) {
  console.error("usage: npm run history:reproject -- <tenantId> [<tenantId> ...] | --all");
  process.exit(2);
}
const feedNotifier = environmentFeedNotifier((error) => console.warn(`feed notice not published: ${String(error)}`));
const ports = { db: documentClient(dynamoSettings()), tables: tableNames(), ...(feedNotifier ? { feedNotifier } : {}) };
const tenants: string[] = [];
if (all) for await (const tenantId of tenantIds(ports)) tenants.push(tenantId);
else tenants.push(...given);
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
