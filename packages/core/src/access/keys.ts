/**
 * API key management: keys per tenant with a role, stored only as hashes, shown once at
 * creation and rotation, revocable. Every change is audited through the ledger.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { domainEvent } from "../event/event.ts";
import { isSimrootError, SimrootError } from "../error.ts";
import { listByTenant, pageInput, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";
import { storedForm } from "../store/form.ts";
import type { RequestContext } from "../context.ts";
import { verb } from "../verb.ts";
import { actingKeyHolds, actingKeyRevoked, apiKeyFormat, apiKeyItemKey, mintApiKey, type Role, roles } from "./api-key.ts";
import { forgetApiKey } from "./key-cache.ts";
import { parseScope, selectorText } from "../feed/scope.ts";

export const apiKeySchema = z
  .object({
    keyId: z.string(),
    tenantId: z.string(),
    role: z.enum(roles),
    name: z.string(),
    createdAt: z.string(),
    rotatedAt: z.string().optional(),
    revokedAt: z.string().optional(),
    selector: z.string().optional().meta({
      description:
        "a pep key's label selector (canonical): the feed it reads is that selector's view (or a narrower one it asks for), never the whole tenant's",
    }),
  })
  .meta({ id: "ApiKey" });
export type ApiKey = z.output<typeof apiKeySchema>;

const listKey = (tenantId: string) => `T#${tenantId}#key`;

async function ownKey(ports: Ports, ctx: RequestContext, keyId: string) {
  return (await ownKeyItem(ports, ctx, keyId)).key;
}

/** The tenant's key as stored: its record, and the hash of the secret it holds now. */
async function ownKeyItem(ports: Ports, ctx: RequestContext, keyId: string) {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: apiKeyItemKey(keyId), ConsistentRead: true }),
  );
  if (!Item || Item.tenantId !== ctx.tenantId) throw new SimrootError("key.not_found", "not_found", `No API key ${keyId}`);
  return { key: apiKeySchema.parse(Item), secretHash: String(Item.secretHash), item: Item };
}

/**
 * The roles a key may be created with: every role but `ingest`, which no route admits (ingestion authenticates each
 * source by its own credentials, `POST /v1/sources`). Keys made before keep it, and are refused as they were.
 */
export const creatableRoles = ["admin", "operator", "viewer", "pep"] as const satisfies readonly Role[];
const creatableRole = z.enum(creatableRoles, {
  error: () =>
    `one of ${creatableRoles.join(", ")} (an ingest key would be admitted by no route: ingestion authenticates each source by its own credentials, POST /v1/sources)`,
});

const createApiKeyInput = z.strictObject({
  name: z.string().min(1).max(128),
  role: creatableRole,
  selector: selectorText.optional().meta({
    description:
      "pep keys only: bind the key to a site or segment, `key=value[,key=value]` (values URI-encoded) as the feed's `selector`. " +
      "The key then reads only that selector's view of the feed (or a narrower selector's), and is refused (403 feed.selector_not_bound) any other; " +
      "without it, a pep key reads the whole tenant's feed",
  }),
});

export const createApiKey = verb(createApiKeyInput, async (ports, ctx, input) => {
  if (input.selector !== undefined && input.role !== "pep") {
    const message = "only a pep key is bound to a selector (the feed is the only thing it narrows)";
    throw new SimrootError("request.invalid", "input", message, { issues: [{ path: "selector", message }] });
  }
  const selector = input.selector === undefined ? undefined : parseScope(input.selector).text;
  const now = ports.now();
  const minted = mintApiKey(ctx.tenantId, input.role, input.name, ports.tables, now, selector ? { selector } : {});
  const event = domainEvent(
    ctx,
    "key.created",
    minted.record.keyId,
    { name: input.name, role: input.role, ...(selector ? { selector } : {}) },
    now,
  );
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    writes: [minted.put, ...actingKeyHolds(ports, ctx)],
    events: [event],
    onConditionFailed: (index) => (index === 1 ? actingKeyRevoked() : undefined),
  });
  return { value: { key: apiKeySchema.parse(minted.record), token: minted.token }, events: [event] };
});

export const listApiKeys = verb(
  pageInput,
  async (ports, ctx, input): Promise<Page<ApiKey>> =>
    listByTenant(ports, "control", listKey(ctx.tenantId), input, (item) => apiKeySchema.parse(item)),
);

/**
 * A new secret for the same key id and role: the old secret stops working at once on this instance, within `keyCacheMs`
 * (1 s) on the others. Conditional on the secret read: of two
 * rotations at once (two instances), one is refused, 409 (review 112: both answered a token, and one of them never
 * worked).
 */
export const rotateApiKey = verb(z.object({ id: z.string() }), async (ports, ctx, input) => {
  const { key, secretHash: read, item } = await ownKeyItem(ports, ctx, input.id);
  // The rotation puts the key back whole: not one of a form this code does not know (a revocation sets one attribute).
  storedForm(item, apiKeyFormat, `Key ${key.keyId}`);
  if (key.revokedAt) throw new SimrootError("key.revoked", "conflict", "A revoked key cannot be rotated");
  // A key rotating itself does so with the secret it holds: the change is conditional on the secret read, so one it no
  // longer holds must be refused here (review 136: an old secret still cached on another instance for its second rotated
  // the key again, and the thief had a lasting token where the owner had none).
  if (ctx.actor === `key:${key.keyId}` && ctx.keySecretHash !== undefined && ctx.keySecretHash !== read) throw actingKeyRevoked();
  const now = ports.now();
  // The same key: the same role and, for a bound pep key, the same selector.
  const minted = mintApiKey(ctx.tenantId, key.role, key.name, ports.tables, now, {
    existingKeyId: key.keyId,
    ...(key.selector ? { selector: key.selector } : {}),
  });
  const event = domainEvent(ctx, "key.rotated", key.keyId, {}, now);
  const put = minted.put.Put!;
  await ports.ledger
    .commit({
      tenantId: ctx.tenantId,
      writes: [
        {
          Put: {
            ...put,
            Item: { ...put.Item, createdAt: key.createdAt, rotatedAt: now.toISOString() },
            // Review 145: and still of a form this code knows (a newer instance may write it after it was read).
            ConditionExpression:
              "attribute_not_exists(revokedAt) AND secretHash = :read AND (attribute_not_exists(#form) OR #form <= :form)",
            ExpressionAttributeNames: { "#form": "format" },
            ExpressionAttributeValues: { ":read": read, ":form": apiKeyFormat },
          },
        },
        ...actingKeyHolds(ports, ctx, key.keyId),
      ],
      events: [event],
      onConditionFailed: (index) => (index === 0 ? undefined : actingKeyRevoked()),
    })
    .catch(async (error: unknown) => {
      if (!isSimrootError(error) || error.code !== "store.conflict") throw error;
      // The key's own condition: revoked, rotated by another request, or written in a newer form since it was read.
      const again = await ownKeyItem(ports, ctx, key.keyId);
      storedForm(again.item, apiKeyFormat, `Key ${key.keyId}`);
      const now = again.key;
      if (now.revokedAt) throw new SimrootError("key.revoked", "conflict", "The key was revoked meanwhile");
      throw new SimrootError(
        "key.rotated_concurrently",
        "conflict",
        "The key was rotated by another request meanwhile: the token that request answered is the one that works (rotate again for a new one)",
      );
    });
  forgetApiKey(ports, key.keyId);
  return { value: { key: { ...key, rotatedAt: now.toISOString() }, token: minted.token }, events: [event] };
});

export const revokeApiKey = verb(z.object({ id: z.string() }), async (ports, ctx, input) => {
  const key = await ownKey(ports, ctx, input.id);
  if (key.revokedAt) return { value: key, events: [] };
  if (key.keyId === ctx.actor.replace(/^key:/, "")) {
    throw new SimrootError("key.self_revocation", "conflict", "A key cannot revoke itself; use another admin key");
  }
  const now = ports.now();
  const event = domainEvent(ctx, "key.revoked", key.keyId, {}, now);
  try {
    await ports.ledger.commit({
      tenantId: ctx.tenantId,
      writes: [
        {
          Update: {
            TableName: ports.tables.control,
            Key: apiKeyItemKey(key.keyId),
            UpdateExpression: "SET revokedAt = :now",
            // Revoked once: a second revocation (another instance's) finds it revoked and records nothing.
            ConditionExpression: "tenantId = :tenant AND attribute_not_exists(revokedAt)",
            ExpressionAttributeValues: { ":now": now.toISOString(), ":tenant": ctx.tenantId },
          },
        },
        // The revoking key still valid: of two admin keys revoking each other at once, one revocation is refused.
        ...actingKeyHolds(ports, ctx, key.keyId),
      ],
      events: [event],
      onConditionFailed: (index) => (index === 0 ? undefined : actingKeyRevoked()),
    });
  } catch (error) {
    if (!isSimrootError(error) || error.code !== "store.conflict") throw error;
    const revoked = await ownKey(ports, ctx, key.keyId);
    if (!revoked.revokedAt) throw error;
    forgetApiKey(ports, key.keyId);
    return { value: revoked, events: [] };
  }
  forgetApiKey(ports, key.keyId);
  return { value: { ...key, revokedAt: now.toISOString() }, events: [event] };
});
