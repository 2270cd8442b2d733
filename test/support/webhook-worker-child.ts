/** A webhook worker in its own process (for kill -9 tests): attempts due deliveries until killed. */
import { deliverDue, documentClient, environmentSealer, portsFor, tableNames } from "@simroot/core";

const db = documentClient({ endpoint: process.env.DYNAMODB_ENDPOINT!, region: "us-east-1" });
// The secrets key file of the runtime that created the subscription (SIMROOT_SECRETS_KEY_FILE).
// Its receiver is the test's, on the loopback: deliveries may go to any address (in AWS, public ones only).
const ports = {
  ...portsFor(db, tableNames(process.env.SIMROOT_TABLE_PREFIX), { publish: async () => {} }),
  secrets: environmentSealer(),
  webhookTargets: "any" as const,
};
for (;;) {
  await deliverDue(ports, { leaseMs: Number(process.env.LEASE_MS ?? 2000), timeoutMs: 60_000, budgetMs: 120_000 });
  await new Promise((resolve) => setTimeout(resolve, 100));
}
