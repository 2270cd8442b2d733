/**
 * How a tenant's policy sits in the control table: one item per rule and per grant (listed
 * through the `byTenant` index in id order), one enforcement-settings item per tenant. Every
 * write is conditional on the revision the caller saw (HTTP If-Match).
 */
import { SimrootError } from "../error.ts";
import { listByTenant, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";

export type PolicyItemKind = "policy" | "grant";

export const policyItemKey = (tenantId: string, kind: PolicyItemKind, id: string) => ({
  pk: `${kind === "policy" ? "P" : "G"}#${tenantId}#${id}`,
  sk: kind,
});

export const policyListKey = (tenantId: string, kind: PolicyItemKind, id: string) => ({ gsi1pk: `T#${tenantId}#${kind}`, gsi1sk: id });

export const enforcementKey = (tenantId: string) => ({ pk: `T#${tenantId}`, sk: "enforcement" });

/**
 * The stored form of rules, grants and enforcement settings this code reads (their `format`, store/form.ts; an item
 * without one is of form 1): one of a newer form is refused (503 `store.newer_format`), not read as a 500, and changed
 * by none of this code (review 143). A change rewrites the item whole, but they are read strictly: an attribute the
 * reading code does not know fails the read rather than being dropped. So this code writes no marker: the release before
 * it reads any (even `format: 1`) as an error, and would refuse every rule after a rollback. The next release may write it.
 */
export const policyItemFormat = 1;

/** Fields the store adds to a record; never part of the API resource or the feed. */
export const withoutKeys = ({ pk: _pk, sk: _sk, gsi1pk: _gsi1pk, gsi1sk: _gsi1sk, ...record }: Record<string, unknown>) => record;

/** The problem for a write whose If-Match names a revision that is no longer current. */
export const preconditionFailed = (what: string) =>
  new SimrootError(
    "request.precondition_failed",
    "conflict",
    `The ${what} changed since you read it: read it again and retry with its ETag`,
    {
      detail: { status: 412 },
    },
  );

/** One page of a tenant's rules or grants, in id (creation) order. */
export async function listPolicyItems<Item>(
  ports: Ports,
  tenantId: string,
  kind: PolicyItemKind,
  page: { limit: number; cursor?: string | undefined },
  parse: (item: Record<string, unknown>) => Item,
): Promise<Page<Item>> {
  return listByTenant(ports, "control", policyListKey(tenantId, kind, "").gsi1pk, page, parse);
}

/** Every rule or grant of a tenant (the loader of the what-if engine). */
export async function allPolicyItems<Item>(
  ports: Ports,
  tenantId: string,
  kind: PolicyItemKind,
  parse: (item: Record<string, unknown>) => Item,
): Promise<Item[]> {
  const items: Item[] = [];
  let cursor: string | undefined;
  do {
    const page = await listPolicyItems(ports, tenantId, kind, { limit: 500, cursor }, parse);
    items.push(...page.items);
    cursor = page.next;
  } while (cursor !== undefined);
  return items;
}

/**
 * The most a rule, a grant or the enforcement settings may take, as JSON. Its change travels as an event carrying the
 * value before and after (`policy.updated`), and EventBridge takes an event of at most 256 KB: a rule of 2,000
 * destinations made one of 326 KB, which no webhook, automation rule or SIEM export would ever see (review 71).
 */
export const maxPolicyBytes = 64 * 1024;

/** Refuses a `kind` whose JSON is over `maxPolicyBytes`, naming the list (`path`) that makes it so. */
export function assertPolicySize(kind: "policy" | "grant" | "enforcement" | "tenant_settings" | "rule", value: unknown, path: string) {
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes <= maxPolicyBytes) return;
  const message = `at most ${maxPolicyBytes} bytes as JSON, this is ${bytes}: split it (fewer destinations each, or wider ones)`;
  throw new SimrootError(`${kind}.too_large`, "input", `The ${kind} is too large: ${message}`, { issues: [{ path, message }] });
}
