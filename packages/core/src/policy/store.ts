/**
 * Policy rules as a resource: create, get, list, replace, remove. Each write commits through
 * the ledger with its audit record, its event (`policy.created|updated|deleted`) and the feed
 * entry enforcement points replicate (`{ kind: "policy", key: id, value: rule | null }`).
 * Replace and remove are conditional on the revision the caller read (If-Match).
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { SimrootError } from "../error.ts";
import { domainEvent } from "../event/event.ts";
import { hasIdKind, newId } from "../id.ts";
import type { FeedChange } from "../ledger/change.ts";
import type { Outcome } from "../outcome.ts";
import { pageInput, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";
import { verb } from "../verb.ts";
import { policyRuleSchema, refuseLegacyForms, type PolicyRule } from "./model.ts";
import { storedForm } from "../store/form.ts";
import {
  assertPolicySize,
  listPolicyItems,
  policyItemFormat,
  policyItemKey,
  policyListKey,
  preconditionFailed,
  withoutKeys,
} from "./records.ts";

export const policyInput = policyRuleSchema.omit({ id: true }).meta({
  id: "PolicyInput",
  description: "a rule as the caller writes it; the id is assigned at creation",
  example: {
    name: "Meters send telemetry",
    selector: { matchLabels: { fleet: "meters" } },
    destinations: [{ fqdn: "ingest.example.com", ports: [8883], protocol: "tcp" }],
    conditions: { bearers: ["cellular", "private-5g"] },
    effect: "allow",
  },
});

export const policySchema = policyRuleSchema
  .extend({
    id: z.string().meta({ example: "pol_01JD3Q4ZK8W9X2V5N6M7P8R9ST" }),
    revision: z.number().int().positive().meta({ description: "increases with every change; the HTTP ETag" }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "Policy", description: "a policy rule with its revision" });
export type Policy = z.output<typeof policySchema>;

/** The rule as the engine and enforcement points take it (no revision or timestamps). */
export const policyRuleOf = ({ revision: _revision, createdAt: _createdAt, updatedAt: _updatedAt, ...rule }: Policy): PolicyRule => rule;

/** A stored rule, refused when of a form this code does not know (records.ts `policyItemFormat`). */
export const storedPolicy = (item: Record<string, unknown>): Policy =>
  policySchema.parse(storedForm(withoutKeys(item), policyItemFormat, `Policy ${String(item.id)}`));

const feedOf = (id: string, policy: Policy | null): FeedChange => ({ kind: "policy", key: id, value: policy && policyRuleOf(policy) });

/** Names no id: a probe from another tenant learns nothing from the answer. */
const notFound = () => new SimrootError("policy.not_found", "not_found", "No such policy in this tenant");

const putPolicy = (ports: Ports, tenantId: string, policy: Policy) => ({
  TableName: ports.tables.control,
  Item: { ...policyItemKey(tenantId, "policy", policy.id), ...policyListKey(tenantId, "policy", policy.id), ...policy },
});

async function readPolicy(ports: Ports, tenantId: string, id: string): Promise<Policy | undefined> {
  if (!hasIdKind("policy", id)) return undefined;
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: policyItemKey(tenantId, "policy", id), ConsistentRead: true }),
  );
  return Item ? storedPolicy(Item) : undefined;
}

/** The current policy, when `revision` is still its revision. */
async function currentPolicy(ports: Ports, tenantId: string, id: string, revision: number): Promise<Policy> {
  const current = await readPolicy(ports, tenantId, id);
  if (!current) throw notFound();
  if (current.revision !== revision) throw preconditionFailed("policy");
  return current;
}

export const createPolicy = verb(policyInput, async (ports, ctx, input): Promise<Outcome<Policy>> => {
  refuseLegacyForms(input);
  assertPolicySize("policy", input, "destinations");
  const now = ports.now();
  const policy: Policy = {
    id: newId("policy", now.getTime()),
    ...input,
    revision: 1,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
  const event = domainEvent(ctx, "policy.created", policy.id, { policy }, now);
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    events: [event],
    feed: [feedOf(policy.id, policy)],
    writes: [{ Put: { ...putPolicy(ports, ctx.tenantId, policy), ConditionExpression: "attribute_not_exists(pk)" } }],
  });
  return { value: policy, events: [event] };
});

export const getPolicy = verb(z.object({ id: z.string() }), async (ports, ctx, input): Promise<Policy> => {
  const policy = await readPolicy(ports, ctx.tenantId, input.id);
  if (!policy) throw notFound();
  return policy;
});

/** A tenant's rules in id (creation) order, a page at a time. */
export const listPolicies = verb(
  pageInput,
  async (ports, ctx, input): Promise<Page<Policy>> => listPolicyItems(ports, ctx.tenantId, "policy", input, storedPolicy),
);

const revisionInput = { id: z.string(), revision: z.number().int().meta({ description: "the revision the caller read (If-Match)" }) };

/** Replaces a rule whole, if it is still at `revision`. */
export const replacePolicy = verb(policyInput.extend(revisionInput), async (ports, ctx, input): Promise<Outcome<Policy>> => {
  const { id, revision, ...rule } = input;
  refuseLegacyForms(rule);
  assertPolicySize("policy", rule, "destinations");
  const previous = await currentPolicy(ports, ctx.tenantId, id, revision);
  const now = ports.now();
  const policy: Policy = { id, ...rule, revision: revision + 1, createdAt: previous.createdAt, updatedAt: now.toISOString() };
  const event = domainEvent(ctx, "policy.updated", id, { policy, previous }, now);
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    events: [event],
    feed: [feedOf(id, policy)],
    writes: [
      {
        Put: {
          ...putPolicy(ports, ctx.tenantId, policy),
          ConditionExpression: "revision = :r",
          ExpressionAttributeValues: { ":r": revision },
        },
      },
    ],
    onConditionFailed: () => preconditionFailed("policy"),
  });
  return { value: policy, events: [event] };
});

/** Removes a rule, if it is still at `revision`. */
export const removePolicy = verb(z.object(revisionInput), async (ports, ctx, input): Promise<Outcome<{ id: string }>> => {
  const previous = await currentPolicy(ports, ctx.tenantId, input.id, input.revision);
  const event = domainEvent(ctx, "policy.deleted", input.id, { previous }, ports.now());
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    events: [event],
    feed: [feedOf(input.id, null)],
    writes: [
      {
        Delete: {
          TableName: ports.tables.control,
          Key: policyItemKey(ctx.tenantId, "policy", input.id),
          ConditionExpression: "revision = :r",
          ExpressionAttributeValues: { ":r": input.revision },
        },
      },
    ],
    onConditionFailed: () => preconditionFailed("policy"),
  });
  return { value: { id: input.id }, events: [event] };
});
