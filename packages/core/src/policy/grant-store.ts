/**
 * Grants as a resource: time-limited access of a third party (a vendor's engineer, a
 * support service) to a device or a labelled group of devices. Created with a validity
 * window, never edited; revoked early by setting `revokedAt`. Each write commits through
 * the ledger with its audit record, its event (`grant.created|revoked`) and the feed entry
 * `{ kind: "grant", key: id, value: grant }` that enforcement points replicate.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { readDevice } from "../device/store.ts";
import { isSimrootError, SimrootError } from "../error.ts";
import { domainEvent } from "../event/event.ts";
import { hasIdKind, newId } from "../id.ts";
import type { FeedChange } from "../ledger/change.ts";
import type { Outcome } from "../outcome.ts";
import { pageInput, type Page } from "../page.ts";
import type { RequestContext } from "../context.ts";
import type { Ports } from "../ports.ts";
import { storedForm } from "../store/form.ts";
import { verb } from "../verb.ts";
import { grantSchema, refuseLegacyForms, type Grant } from "./model.ts";
import { assertPolicySize, listPolicyItems, policyItemFormat, policyItemKey, policyListKey, withoutKeys } from "./records.ts";

const { principal, target, destinations, notBefore, notAfter } = grantSchema.shape;

/** The longest a grant runs, from its start or from now: time-limited access, not a standing one (a policy rule). */
export const maxGrantDays = 90;

export const grantInput = z
  .strictObject({
    principal,
    target,
    destinations,
    notBefore,
    notAfter: notAfter.meta({
      description:
        "when the grant ends: after notBefore, and at most 90 days after notBefore or now, whichever is later (JSON Schema cannot compare two fields; the server does)",
    }),
    sessionRecording: z.boolean().default(false).meta({ description: "the enforcement point must record sessions under this grant" }),
  })
  // An instant that does not parse has its own issue: compare only two real ones.
  .refine((g) => !(Date.parse(g.notBefore) >= Date.parse(g.notAfter)), { message: "notBefore must precede notAfter", path: ["notAfter"] })
  .meta({
    id: "GrantInput",
    example: {
      principal: "vendor:acme/jane",
      target: { deviceId: "dev_01JD3Q4ZK8W9X2V5N6M7P8R9ST" },
      destinations: [{ cidr: "10.8.0.0/24", ports: [22], protocol: "tcp" }],
      notBefore: "2025-03-01T08:00:00Z",
      notAfter: "2025-03-01T12:00:00Z",
      sessionRecording: true,
    },
  });

export const grantStatuses = ["pending", "active", "expired", "revoked"] as const;

const storedGrantSchema = grantSchema.extend({
  revokedReason: z.string().optional(),
  revision: z.number().int().positive(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type StoredGrant = z.output<typeof storedGrantSchema>;

export const grantRecordSchema = storedGrantSchema
  .extend({ status: z.enum(grantStatuses).meta({ description: "where the grant stands now (computed when read)" }) })
  .meta({ id: "GrantRecord", description: "a grant with its revision and current status" });
export type GrantRecord = z.output<typeof grantRecordSchema>;

/** The grant as the engine and enforcement points take it. */
export const grantOf = ({
  revokedReason: _reason,
  revision: _revision,
  createdAt: _createdAt,
  updatedAt: _updatedAt,
  ...grant
}: StoredGrant): Grant => grant;

export const storedGrant = (item: Record<string, unknown>): StoredGrant => {
  const { expiresAt: _expiresAt, ...grant } = withoutKeys(item);
  return storedGrantSchema.parse(storedForm(grant, policyItemFormat, `Grant ${String(item.id)}`));
};

/** How long a grant is kept once it ended or was revoked. */
export const endedGrantDays = 90;

/**
 * When the store drops a grant (its TTL, epoch seconds): `endedGrantDays` after it ended or was revoked, whichever came
 * first. Until then `GET /v1/grants` lists it; the audit trail keeps its records as long as it keeps any record (review
 * 113: grants were kept for ever, and every snapshot read all of them). A fixed figure, not the audit retention's
 * setting: every function that reads grants would bundle that setting, the IoT authorizer among them.
 */
const grantExpiresAt = (grant: StoredGrant) =>
  Math.floor(Math.min(Date.parse(grant.notAfter), Date.parse(grant.revokedAt ?? grant.notAfter)) / 1000) + endedGrantDays * 86_400;

function statusAt(grant: StoredGrant, now: number): GrantRecord["status"] {
  if (grant.revokedAt !== undefined) return "revoked";
  if (now < Date.parse(grant.notBefore)) return "pending";
  return now < Date.parse(grant.notAfter) ? "active" : "expired";
}

const withStatus = (grant: StoredGrant, now: Date): GrantRecord => ({ ...grant, status: statusAt(grant, now.getTime()) });

const feedOf = (grant: StoredGrant): FeedChange => ({ kind: "grant", key: grant.id, value: grantOf(grant) });

/** Names no id: a probe from another tenant learns nothing from the answer. */
const notFound = () => new SimrootError("grant.not_found", "not_found", "No such grant in this tenant");

async function readGrant(ports: Ports, tenantId: string, id: string): Promise<StoredGrant | undefined> {
  if (!hasIdKind("grant", id)) return undefined;
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: policyItemKey(tenantId, "grant", id), ConsistentRead: true }),
  );
  return Item ? storedGrant(Item) : undefined;
}

export const createGrant = verb(grantInput, (ports, ctx, input) => {
  refuseLegacyForms(input);
  return storeGrant(ports, ctx, input, newId("grant", ports.now().getTime()));
});

/**
 * A grant under an id its cause decides (an automation rule's action on an event: `idFromSeed`), created once: taken
 * again for the same cause (the event delivered twice, or again after a later action failed), it is the grant already
 * made, `created` false (review 67: each run made a grant of its own, a second live access for the third party).
 */
export async function createGrantOnce(
  ports: Ports,
  ctx: RequestContext,
  input: z.input<typeof grantInput>,
  id: string,
): Promise<Outcome<GrantRecord> & { created: boolean }> {
  try {
    return { ...(await storeGrant(ports, ctx, grantInput.parse(input), id)), created: true };
  } catch (error) {
    if (!(isSimrootError(error) && error.code === "grant.exists")) throw error;
    const existing = await readGrant(ports, ctx.tenantId, id);
    if (!existing) throw error;
    return { value: withStatus(existing, ports.now()), events: [], created: false };
  }
}

async function storeGrant(
  ports: Ports,
  ctx: RequestContext,
  input: z.output<typeof grantInput>,
  id: string,
): Promise<Outcome<GrantRecord>> {
  assertPolicySize("grant", input, "destinations");
  const now = ports.now();
  if (Date.parse(input.notAfter) <= now.getTime()) {
    throw new SimrootError("grant.already_ended", "input", "A grant whose notAfter has passed would grant nothing", {
      issues: [{ path: "notAfter", message: "must be in the future" }],
    });
  }
  // A grant is time-limited: one running for 8,000 years was taken, a standing access listed as a grant (review 135).
  if (Date.parse(input.notAfter) - Math.max(Date.parse(input.notBefore), now.getTime()) > maxGrantDays * 86_400_000) {
    throw new SimrootError("grant.too_long", "input", `A grant runs for at most ${maxGrantDays} days: a standing access is a policy rule`, {
      issues: [{ path: "notAfter", message: `at most ${maxGrantDays} days after notBefore (or now, if later)` }],
    });
  }
  if ("deviceId" in input.target && !(await readDevice(ports, ctx.tenantId, input.target.deviceId))) {
    throw new SimrootError("grant.unknown_device", "input", "No such device in this tenant", {
      issues: [{ path: "target.deviceId", message: "no such device in this tenant" }],
    });
  }
  const grant: StoredGrant = {
    id,
    ...input,
    revision: 1,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
  const event = domainEvent(ctx, "grant.created", grant.id, { grant }, now);
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    events: [event],
    feed: [feedOf(grant)],
    writes: [
      {
        Put: {
          TableName: ports.tables.control,
          Item: {
            ...policyItemKey(ctx.tenantId, "grant", grant.id),
            ...policyListKey(ctx.tenantId, "grant", grant.id),
            ...grant,
            expiresAt: grantExpiresAt(grant),
          },
          ConditionExpression: "attribute_not_exists(pk)",
        },
      },
    ],
    onConditionFailed: () => new SimrootError("grant.exists", "conflict", `Grant ${id} exists already`),
  });
  return { value: withStatus(grant, now), events: [event] };
}

export const getGrant = verb(z.object({ id: z.string() }), async (ports, ctx, input): Promise<GrantRecord> => {
  const grant = await readGrant(ports, ctx.tenantId, input.id);
  if (!grant) throw notFound();
  return withStatus(grant, ports.now());
});

/** A tenant's grants in id (creation) order, a page at a time, expired and revoked ones included for `endedGrantDays` after they ended. */
export const listGrants = verb(pageInput, async (ports, ctx, input): Promise<Page<GrantRecord>> => {
  const now = ports.now();
  return listPolicyItems(ports, ctx.tenantId, "grant", input, (item) => withStatus(storedGrant(item), now));
});

export const revokeGrantInput = z.object({ id: z.string(), reason: z.string().min(1).max(500).optional() });

/** Ends a grant now, before its notAfter. */
export const revokeGrant = verb(revokeGrantInput, async (ports, ctx, input): Promise<Outcome<GrantRecord>> => {
  const grant = await readGrant(ports, ctx.tenantId, input.id);
  if (!grant) throw notFound();
  const alreadyRevoked = () => new SimrootError("grant.already_revoked", "conflict", "The grant is already revoked");
  if (grant.revokedAt !== undefined) throw alreadyRevoked();
  const now = ports.now();
  if (Date.parse(grant.notAfter) <= now.getTime()) throw new SimrootError("grant.expired", "conflict", "The grant has already ended");
  const revoked: StoredGrant = {
    ...grant,
    revokedAt: now.toISOString(),
    ...(input.reason ? { revokedReason: input.reason } : {}),
    revision: grant.revision + 1,
    updatedAt: now.toISOString(),
  };
  const event = domainEvent(
    ctx,
    "grant.revoked",
    grant.id,
    { revokedAt: revoked.revokedAt, reason: input.reason, principal: grant.principal },
    now,
  );
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    events: [event],
    feed: [feedOf(revoked)],
    writes: [
      {
        Put: {
          TableName: ports.tables.control,
          Item: {
            ...policyItemKey(ctx.tenantId, "grant", grant.id),
            ...policyListKey(ctx.tenantId, "grant", grant.id),
            ...revoked,
            expiresAt: grantExpiresAt(revoked),
          },
          ConditionExpression: "revision = :r AND attribute_not_exists(revokedAt)",
          ExpressionAttributeValues: { ":r": grant.revision },
        },
      },
    ],
    // Revocation is the only change a grant sees: a failed condition means another revoke won.
    onConditionFailed: alreadyRevoked,
  });
  return { value: withStatus(revoked, now), events: [event] };
});
