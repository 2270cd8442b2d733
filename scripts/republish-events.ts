/**
 * Publishes again the events of committed records the outbox's stream mapping dropped (core outbox/republish.ts), each
 * as committed (a record that does not verify is logged and not published), within the last 6 days: when
 * the `StreamDiscards` alarm fires for the outbox's mapping, its message in `StreamDiscardsQueue` says when the stream
 * got the batch's first and last record (`approximateArrivalOfFirstRecord`, `...LastRecord`); the message names no
 * tenant, so `--all` walks every tenant's records of that window. Consumers take an event published again as a
 * redelivery (by its id).
 *
 *   npm run outbox:republish -- --from <ISO time> --to <ISO time> (--all | <tenantId> [<tenantId> ...])
 *
 * Against the stage whose tables `SIMROOT_TABLE_*` and bus `SIMROOT_BUS_NAME` name, with the shell's AWS credentials
 * (audit `Query` and `GetItem`, control `Query` for `--all` and the tenants' interests, `events:PutEvents`, and what a
 * dead letter writes). In AWS only: locally the bus lives in the control plane's process (`npm start`).
 */
import { busName, documentClient, dynamoSettings, eventBridgePublisher, republishEvents, tableNames, tenantIds } from "@simroot/core";

const usage = "usage: npm run outbox:republish -- --from <ISO time> --to <ISO time> (--all | <tenantId> [<tenantId> ...])";
const given = process.argv.slice(2);
const option = (name: string) => {
  const at = given.indexOf(name);
  return at < 0 ? undefined : given.splice(at, 2)[1];
};
const from = new Date(option("--from") ?? "");
const to = new Date(option("--to") ?? "");
const all = given.length === 1 && given[0] === "--all";
if (
  Number.isNaN(from.getTime()) ||
  Number.isNaN(to.getTime()) ||
  from > to ||
  given.length === 0 ||
  (!all && given.some((id) => id.startsWith("-")))
) {
  console.error(usage);
  process.exit(2);
}
const ports = { db: documentClient(dynamoSettings()), tables: tableNames() };
const publisher = eventBridgePublisher(busName());
const tenants: string[] = [];
if (all) for await (const tenantId of tenantIds(ports)) tenants.push(tenantId);
else tenants.push(...given);
for (const tenantId of tenants) {
  try {
    const { published, refused, unverified, cleared } = await republishEvents(publisher, ports, tenantId, { from, to });
    const notes = [
      ...(refused > 0 ? [`${refused} refused for good (dead letters, rule outbox)`] : []),
      ...(cleared > 0 ? [`${cleared} held dead letters cleared (their events are on the bus now)`] : []),
      ...(unverified > 0 ? [`${unverified} records that do not verify not published (see the log)`] : []),
    ];
    console.log(`${tenantId}: ${published} events published again${notes.map((note) => `, ${note}`).join("")}`);
    if (unverified > 0) process.exitCode = 1;
  } catch (error) {
    // One tenant's failure does not stop the others'.
    console.error(`${tenantId}: ${String((error as Error)?.message ?? error)}`);
    process.exitCode = 1;
  }
}
ports.db.destroy();
