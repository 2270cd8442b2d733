import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { SimrootError } from "../error.ts";
import { newId } from "../id.ts";
import type { RequestContext } from "../context.ts";
import type { Ports } from "../ports.ts";
import type { TransactItem } from "../store/transaction.ts";
import { cachedKey, forgetApiKey } from "./key-cache.ts";

export const roles = ["admin", "operator", "viewer", "ingest", "pep"] as const;
export type Role = (typeof roles)[number];

export interface ApiKeyRecord {
  readonly keyId: string;
  readonly tenantId: string;
  readonly role: Role;
  readonly name: string;
  readonly createdAt: string;
  readonly revokedAt?: string;
  /** A `pep` key's label selector (canonical, feed/scope.ts): the feed it reads is that selector's view, never wider. */
  readonly selector?: string;
}

/** Who a valid key speaks for. */
export interface Principal {
  readonly tenantId: string;
  readonly keyId: string;
  readonly role: Role;
  /** The selector the key is bound to (`pep` keys only; absent: the whole tenant's feed). */
  readonly selector?: string;
  /** The stored hash of the secret presented (base64): what a change of the tenant's keys checks still holds. */
  readonly secretHash?: string;
}

const roleSchema = z.enum(roles);
const keyPattern = /^sr_(key_[0-9A-HJKMNP-TV-Z]{26})_([A-Za-z0-9_-]{43})$/;
const secretHash = (secret: string) => createHash("sha256").update(secret).digest();
export const apiKeyItemKey = (keyId: string) => ({ pk: `K#${keyId}`, sk: "key" });

/**
 * The stored form of a key item this code writes (its `format`, store/form.ts; an item without one is of form 1). A
 * rotation puts the key back whole from what the rotating code knows of it: code of the release before an attribute put
 * the key back without it, silently (review 143). Code older than the form refuses to change the key (503
 * `store.newer_format`, keys.ts); a revocation sets one attribute, and authentication reads what it knows: neither refuses it.
 */
export const apiKeyFormat = 1;

/**
 * A new key: the full token is returned once and never stored; the store keeps only the
 * SHA-256 of its 256-bit random secret (enough for a high-entropy secret; no slow hash needed).
 */
export function mintApiKey(
  tenantId: string,
  role: Role,
  name: string,
  tables: Ports["tables"],
  now: Date,
  options: { readonly existingKeyId?: string; readonly selector?: string } = {},
) {
  const { existingKeyId, selector } = options;
  const keyId = existingKeyId ?? newId("key", now.getTime());
  const secret = randomBytes(32).toString("base64url");
  const record: ApiKeyRecord = { keyId, tenantId, role, name, createdAt: now.toISOString(), ...(selector ? { selector } : {}) };
  const put: TransactItem = {
    Put: {
      TableName: tables.control,
      Item: {
        ...apiKeyItemKey(keyId),
        gsi1pk: `T#${tenantId}#key`,
        gsi1sk: keyId,
        ...record,
        secretHash: secretHash(secret).toString("base64"),
        format: apiKeyFormat,
      },
      ...(existingKeyId ? {} : { ConditionExpression: "attribute_not_exists(pk)" }),
    },
  };
  return { token: `sr_${keyId}_${secret}`, record, put };
}

export const unauthenticatedKey = () => new SimrootError("auth.invalid_key", "auth", "Missing, malformed, revoked or unknown API key");
const unauthenticated = unauthenticatedKey;

/** Resolves a bearer token to its principal, or throws `auth.invalid_key` (key records cached briefly: see key-cache.ts). */
export async function authenticate(
  ports: Pick<Ports, "db" | "tables">,
  token: string | undefined,
  options: { readonly readAgain?: boolean } = {},
): Promise<Principal> {
  const match = token ? keyPattern.exec(token) : null;
  if (!match) throw unauthenticated();
  const [, keyId, secret] = match as unknown as [string, string, string];
  const read = async () =>
    (await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: apiKeyItemKey(keyId), ConsistentRead: true }))).Item;
  const presented = secretHash(secret);
  const holds = (item: Record<string, unknown> | undefined): item is Record<string, unknown> & { secretHash: string } => {
    if (!item || item.revokedAt || typeof item.secretHash !== "string") return false;
    const stored = Buffer.from(item.secretHash, "base64");
    return stored.length === presented.length && timingSafeEqual(stored, presented);
  };
  let item = await cachedKey(ports, keyId, read);
  // Another secret than the one this instance last read, of a key it holds not revoked: the key may have been rotated
  // through another instance, and this is its new secret. Read again before refusing (review 136: a PEP switched to its
  // new token was refused 401, and backed off, for up to the old record's second here). A made-up secret costs one
  // read, counted by the failed-authentication limit as every refusal is. `readAgain: false` refuses it as held here (the
  // feed's MQTT authorizer, for a key past its failures: no address to count them by, so the read is what it bounds).
  if (options.readAgain !== false && item && !item.revokedAt && !holds(item)) {
    forgetApiKey(ports, keyId);
    item = await cachedKey(ports, keyId, read);
  }
  if (!holds(item)) throw unauthenticated();
  return {
    tenantId: String(item.tenantId),
    keyId,
    role: roleSchema.parse(item.role),
    ...(typeof item.selector === "string" ? { selector: item.selector } : {}),
    secretHash: item.secretHash,
  };
}

/**
 * The key making the request, not revoked when the change commits: a check in the change's transaction, for the changes
 * that give or take away access (review 112: two admin keys revoking each other through two instances both committed,
 * and left the tenant no admin key; each was authenticated when its request began). None for a request not made with a
 * key, or made with the key it changes (the change's own condition covers it).
 */
export function actingKeyHolds(ports: Ports, ctx: RequestContext, changed?: string): TransactItem[] {
  const keyId = ctx.actor.startsWith("key:") ? ctx.actor.slice("key:".length) : undefined;
  if (keyId === undefined || keyId === changed) return [];
  return [
    {
      ConditionCheck: {
        TableName: ports.tables.control,
        Key: apiKeyItemKey(keyId),
        ConditionExpression: `tenantId = :tenant AND attribute_not_exists(revokedAt)${ctx.keySecretHash ? " AND secretHash = :presented" : ""}`,
        ExpressionAttributeValues: { ":tenant": ctx.tenantId, ...(ctx.keySecretHash ? { ":presented": ctx.keySecretHash } : {}) },
      },
    },
  ];
}
/** The acting key's check failed: refused as that key's next request is. */
export const actingKeyRevoked = () =>
  new SimrootError("auth.invalid_key", "auth", "The API key making this request was revoked or rotated while it was under way");
