/**
 * Loads a tenant's whole policy set (rules, grants, enforcement settings) from the store,
 * for the what-if API. Enforcement points do not call this: they build the same set from
 * the change feed. Rules and grants are listed through the `byTenant` index, which is
 * eventually consistent in DynamoDB: a write may take a moment to show here.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { feedHeadKey } from "../ledger/feed-version.ts";
import type { Ports } from "../ports.ts";
import { enforcementSettingsOf, readEnforcement } from "./enforcement-store.ts";
import { grantOf, storedGrant } from "./grant-store.ts";
import type { PolicySet } from "./model.ts";
import { allPolicyItems } from "./records.ts";
import { policyRuleOf, storedPolicy } from "./store.ts";

/**
 * The tenant's policy set. `version` is the tenant's feed version (its feed head) read before
 * the items: the set reflects at least every change up to it.
 */
export async function loadPolicySet(ports: Ports, tenantId: string): Promise<PolicySet> {
  const { Item: head } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }),
  );
  const [rules, grants, enforcement] = await Promise.all([
    allPolicyItems(ports, tenantId, "policy", (item) => policyRuleOf(storedPolicy(item))),
    allPolicyItems(ports, tenantId, "grant", (item) => grantOf(storedGrant(item))),
    readEnforcement(ports, tenantId),
  ]);
  return { version: head ? Number(head.version) : 0, rules, grants, settings: enforcementSettingsOf(enforcement) };
}
