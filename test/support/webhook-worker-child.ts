/** A webhook worker in its own process (for kill -9 tests): attempts due deliveries until killed. */
import { deliverDue, documentClient, portsFor, tableNames } from "@simroot/core";

const db = documentClient({ endpoint: process.env.DYNAMODB_ENDPOINT!, region: "us-east-1" });
const ports = portsFor(db, tableNames(process.env.SIMROOT_TABLE_PREFIX), { publish: async () => {} });
for (;;) {
  await deliverDue(ports, { leaseMs: Number(process.env.LEASE_MS ?? 2000), timeoutMs: 60_000 });
  await new Promise((resolve) => setTimeout(resolve, 100));
}
