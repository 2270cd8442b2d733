/**
 * Writes tenants' history again from their audit records (core outbox/reproject.ts): each record listed under its
 * subject, its IP lease edges as lease items. For history the stream's history reader never wrote (its writes failing
 * for the 24 hours records stay on the stream: the `HistoryIteratorAge` alarm says so long before), or removed by hand.
 * Safe beside the running reader: the same items, put again.
 *
 *   npm run history:reproject -- <tenantId> [<tenantId> ...]
 *
 * Against the stage whose tables `SIMROOT_TABLE_*` name (their defaults otherwise), with the shell's AWS credentials
 * (audit `Query` and `BatchWriteItem`, identity `BatchWriteItem`); locally `DYNAMODB_ENDPOINT=http://localhost:8000`.
 */
import { documentClient, dynamoSettings, reprojectHistory, tableNames } from "@simroot/core";

const tenants = process.argv.slice(2);
if (tenants.length === 0) {
  console.error("usage: npm run history:reproject -- <tenantId> [<tenantId> ...]");
  process.exit(2);
}
const ports = { db: documentClient(dynamoSettings()), tables: tableNames() };
for (const tenantId of tenants) {
  const reached = await reprojectHistory(ports, tenantId);
  console.log(`${tenantId}: history written again up to ${reached.map((seq, shard) => `s${shard}:${seq}`).join(" ")}`);
}
ports.db.destroy();
