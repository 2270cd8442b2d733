import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { SimrootError } from "../error.ts";
import { newId } from "../id.ts";
import type { Ports } from "../ports.ts";
import type { TransactItem } from "../store/transaction.ts";
import { cachedKey } from "./key-cache.ts";

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
      },
      ...(existingKeyId ? {} : { ConditionExpression: "attribute_not_exists(pk)" }),
    },
  };
  return { token: `sr_${keyId}_${secret}`, record, put };
}

export const unauthenticatedKey = () => new SimrootError("auth.invalid_key", "auth", "Missing, malformed, revoked or unknown API key");
const unauthenticated = unauthenticatedKey;

/** Resolves a bearer token to its principal, or throws `auth.invalid_key` (key records cached briefly: see key-cache.ts). */
export async function authenticate(ports: Pick<Ports, "db" | "tables">, token: string | undefined): Promise<Principal> {
  const match = token ? keyPattern.exec(token) : null;
  if (!match) throw unauthenticated();
  const [, keyId, secret] = match as unknown as [string, string, string];
  const item = await cachedKey(ports, keyId, async () => {
    const result = await ports.db.send(
      new GetCommand({ TableName: ports.tables.control, Key: apiKeyItemKey(keyId), ConsistentRead: true }),
    );
    return result.Item;
  });
  if (!item || item.revokedAt || typeof item.secretHash !== "string") throw unauthenticated();
  const stored = Buffer.from(item.secretHash, "base64");
  const presented = secretHash(secret);
  if (stored.length !== presented.length || !timingSafeEqual(stored, presented)) throw unauthenticated();
  return {
    tenantId: String(item.tenantId),
    keyId,
    role: roleSchema.parse(item.role),
    ...(typeof item.selector === "string" ? { selector: item.selector } : {}),
    secretHash: item.secretHash,
  };
}
