/**
 * Ingestion sources: an operator core, eSIM manager or platform that posts webhooks to
 * `/v1/ingest/{sourceId}`. Each belongs to one tenant, speaks one format and has its own
 * credentials, generated here where the format allows and shown once.
 */
import { randomBytes } from "node:crypto";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { bearerSchema } from "../catalogue/catalogue.ts";
import { SimrootError } from "../error.ts";
import { hasIdKind, newId } from "../id.ts";
import { listByTenant, pageInput, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";
import { domainEvent } from "../event/event.ts";
import { Lru } from "../store/lru.ts";
import { verb } from "../verb.ts";
import { sourceHealthKey } from "./source-health.ts";
import { ingestFormats, type IngestFormat, type SourceCredentials } from "./adapter.ts";
import { parseTrustAnchors } from "./adapters/eim-verify.ts";
import { ed25519PublicKey } from "./adapters/keys.ts";

export const sourceSchema = z
  .object({
    id: z.string().meta({ example: "src_01JD3Q4ZK8W9X2V5N6M7P8R9ST" }),
    tenantId: z.string(),
    name: z.string(),
    format: z.enum(ingestFormats),
    ingestPath: z.string().meta({ description: "where the source posts its webhooks" }),
    defaultBearer: bearerSchema.optional().meta({ description: "the bearer a cellular report stands for (private-5g for a private core)" }),
    maxClockSkewSeconds: z.number().int().min(0).max(86_400).optional().meta({
      description: "how far into the future (s) a reported time may lie; later ones are ordered at the receive time (default 300)",
    }),
    createdAt: z.string(),
    credentialsRotatedAt: z.string(),
  })
  .meta({ id: "Source" });
export type Source = z.output<typeof sourceSchema>;

/**
 * A credential given for a source (a token, a password, a secret, a user name): real ones are tens of characters. Unbounded,
 * one of 400 KB made the source's item too large for DynamoDB, and the creation a 500 (review 80).
 */
const maxCredentialLength = 1024;
/**
 * The trust anchors all together: some 80 PEM certificates of ECDSA keys, as GSMA's eSIM PKI issues. PEM is ASCII
 * (RFC 7468), at most twice its length as JSON: kept beside the source and in the sealed idempotent answer of its creation
 * or rotation, 20 anchors of 20,000 characters made that answer too large for DynamoDB (a 500 once the source existed).
 */
const maxTrustAnchorsLength = 64 * 1024;
const credential = (min: number) => z.string().min(min).max(maxCredentialLength);
/** A C0 control character or DEL, which RFC 7617 keeps out of a Basic user-id and password. */
const hasControl = (text: string) => [...text].some((character) => character < " " || character === "\x7f");

export const credentialsSchema = z
  .object({
    // What a sender can present (review 129: accepted, shown once, then every delivery refused 401): a bearer token is
    // one run of visible ASCII (the `Authorization: Bearer` value), a Basic user-id holds no colon (RFC 7617: the first
    // colon ends it) and neither it nor the password a control character.
    bearerToken: credential(16)
      .regex(/^[\x21-\x7e]+$/, "visible ASCII characters, no space: the value of `Authorization: Bearer`")
      .optional(),
    basicUser: credential(1)
      .refine(
        (user) => !user.includes(":") && !hasControl(user),
        "no colon (RFC 7617: the first colon ends the user-id) and no control character",
      )
      .optional(),
    basicPassword: credential(12)
      .refine((password) => !hasControl(password), "no control character (RFC 7617)")
      .optional(),
    webhookSecret: credential(22)
      .regex(/^whsec_[A-Za-z0-9+/=]{16,}$/)
      .optional()
      .meta({
        description:
          "simroot: the Standard Webhooks secret keying v1 HMAC-SHA256 signatures (generated unless given); none with a public key",
      }),
    webhookPublicKey: z
      .string()
      .min(32)
      .max(1024)
      .refine((key) => ed25519PublicKey(key) !== undefined, "must be whpk_<base64 of a 32-byte Ed25519 key> or an Ed25519 PEM public key")
      .optional()
      .meta({
        description:
          "simroot: the sender's Ed25519 public key; the source then accepts only v1a signatures it verifies, and holds no secret",
      }),
    twilioAuthToken: credential(16).optional(),
    trustAnchors: z
      .array(
        z
          .string()
          .max(20_000)
          .regex(/^[\x20-\x7e\t\r\n]*$/, "PEM text is printable ASCII"),
      )
      .min(1)
      .max(20)
      .refine(
        (anchors) => anchors.reduce((length, anchor) => length + anchor.length, 0) <= maxTrustAnchorsLength,
        `the trust anchors take at most ${maxTrustAnchorsLength} characters together`,
      )
      .optional()
      .meta({ description: "eim: PEM certificates (GSMA CI roots and/or EUM certificates) eUICC notifications must chain to" }),
    twilioSharedKeySecret: credential(16).optional(),
  })
  .meta({ id: "SourceCredentials", description: "shown once, at creation and rotation" });

export const createSourceInput = z.strictObject({
  name: z.string().min(1).max(128),
  format: z.enum(ingestFormats),
  /** Credentials the sender already has (a Twilio auth token, an ed25519 public key); the rest are generated. */
  credentials: credentialsSchema.optional(),
  defaultBearer: bearerSchema.optional(),
  maxClockSkewSeconds: z.number().int().min(0).max(86_400).optional(),
});

const token = (bytes = 32) => randomBytes(bytes).toString("base64url");

/** Fills in every credential the format needs and the caller did not bring. */
function credentialsFor(format: IngestFormat, given: SourceCredentials = {}): SourceCredentials {
  switch (format) {
    case "camara":
    case "nef":
      return { bearerToken: given.bearerToken ?? token() };
    case "eim":
      return {
        bearerToken: given.bearerToken ?? token(),
        ...(given.trustAnchors ? { trustAnchors: checkedTrustAnchors(given.trustAnchors) } : {}),
      };
    case "datastreamer":
      return { basicUser: given.basicUser ?? `simroot-${token(6)}`, basicPassword: given.basicPassword ?? token() };
    case "simroot":
      // Signed with the sender's private key (`v1a`), a source holds no secret: one generated beside the key (as before
      // review 80) made `v1` HMAC signatures valid too, so whoever read the stored secret could forge the sender's messages.
      if (given.webhookPublicKey) {
        if (given.webhookSecret) {
          throw new SimrootError(
            "source.credentials_conflict",
            "input",
            "A simroot source verifies either v1a signatures with a public key or v1 HMAC signatures with a secret, not both",
            {
              issues: [
                { path: "credentials.webhookSecret", message: "not with credentials.webhookPublicKey: a v1a source holds no secret" },
              ],
            },
          );
        }
        return { webhookPublicKey: given.webhookPublicKey };
      }
      return { webhookSecret: given.webhookSecret ?? `whsec_${randomBytes(24).toString("base64")}` };
    case "supersim":
      if (!given.twilioAuthToken) {
        throw new SimrootError("source.credentials_required", "input", "A supersim source needs the Twilio account's auth token", {
          issues: [{ path: "credentials.twilioAuthToken", message: "required for format supersim" }],
        });
      }
      return {
        twilioAuthToken: given.twilioAuthToken,
        ...(given.twilioSharedKeySecret ? { twilioSharedKeySecret: given.twilioSharedKeySecret } : {}),
      };
  }
}

function checkedTrustAnchors(pems: string[]): string[] {
  try {
    parseTrustAnchors(pems);
  } catch {
    throw new SimrootError("source.trust_anchors_invalid", "input", "Trust anchors must be PEM X.509 certificates", {
      issues: [{ path: "credentials.trustAnchors", message: "each entry must hold PEM certificates (-----BEGIN CERTIFICATE-----)" }],
    });
  }
  return pems;
}

const sourceKey = (sourceId: string) => ({ pk: `SRC#${sourceId}`, sk: "source" });
const listKey = (tenantId: string) => `T#${tenantId}#source`;

export const createSource = verb(createSourceInput, async (ports, ctx, input) => {
  const now = ports.now().toISOString();
  const id = newId("source");
  const source: Source = {
    id,
    tenantId: ctx.tenantId,
    name: input.name,
    format: input.format,
    ingestPath: `/v1/ingest/${id}`,
    defaultBearer: input.defaultBearer,
    ...(input.maxClockSkewSeconds === undefined ? {} : { maxClockSkewSeconds: input.maxClockSkewSeconds }),
    createdAt: now,
    credentialsRotatedAt: now,
  };
  const credentials = credentialsFor(input.format, input.credentials);
  // Audited without the secrets: who created which source, in which format, trusting what.
  const event = domainEvent(
    ctx,
    "source.created",
    id,
    { sourceId: id, name: source.name, format: source.format, ...anchorsOf(credentials) },
    ports.now(),
  );
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    writes: [
      {
        Put: {
          TableName: ports.tables.control,
          Item: { ...sourceKey(id), gsi1pk: listKey(ctx.tenantId), gsi1sk: id, ...source, credentials },
          ConditionExpression: "attribute_not_exists(pk)",
        },
      },
    ],
    events: [event],
  });
  return { source, credentials };
});

/** What the audit may say about credentials: the trust anchors' count and fingerprints, never a secret. */
function anchorsOf(credentials: SourceCredentials) {
  if (!credentials.trustAnchors) return {};
  return {
    trustAnchors: parseTrustAnchors(credentials.trustAnchors).map((anchor) => ({ subject: anchor.subject, sha256: anchor.fingerprint256 })),
  };
}

/** `credentialsRevision`: how many times the credentials were rotated (absent before the first rotation counted). */
type SourceWithCredentials = { source: Source; credentials: SourceCredentials; credentialsRevision: number };
/** `found` undefined: no source has the id (kept as a source is, so an unknown id costs the reads a known one does). */
type Cached = { found: SourceWithCredentials | undefined; until: number };
/**
 * The sources of the ingestion endpoint, per process (per Lambda instance), each entry kept `sourceCacheMs`.
 * `verified`: sources a request authenticated with, the `maxVerifiedSources` last used. `unverified`: anything else
 * read (an id that names no source, a source nobody has authenticated with yet), the `maxUnverifiedSources` last read.
 * A spray of requests naming random ids fills only `unverified`: it cannot evict a source its sender uses (one map of
 * 10,000, emptied when full, was emptied every 10,000 random ids, and every real source read again: review 89).
 */
const recentSources = new WeakMap<object, { verified: Lru<string, Cached>; unverified: Lru<string, Cached> }>();
const sourceCacheMs = 5_000;
export const maxVerifiedSources = 10_000;
export const maxUnverifiedSources = 1_000;

function cachesOf(ports: Ports) {
  let caches = recentSources.get(ports.db);
  if (!caches) {
    caches = { verified: new Lru(maxVerifiedSources), unverified: new Lru(maxUnverifiedSources) };
    recentSources.set(ports.db, caches);
  }
  return caches;
}

/**
 * A source for the ingestion endpoint, cached for a few seconds (every webhook needs it).
 * `fresh` skips the cache: the endpoint asks again before refusing credentials, so new
 * credentials work at once everywhere. Old credentials stop at once on the instance that
 * rotated them (it drops its entry); other instances accept them for at most
 * `sourceCacheMs` (5 s), until their cached entry expires.
 */
export async function sourceForIngest(ports: Ports, sourceId: string, fresh = false): Promise<SourceWithCredentials> {
  const found = await sourceIfAny(ports, sourceId, fresh);
  if (!found) throw new SimrootError("source.not_found", "not_found", `No ingestion source ${sourceId}`);
  return found;
}

/**
 * `sourceForIngest`, undefined when no source has the id. That an id names no source is cached as a source is (an id
 * that is not a source id is not read at all): ingestion answers an unknown source as one refusing credentials, with the
 * same reads (review 83). Both are cached as unverified until a request authenticates (`sourceAuthenticated`).
 */
export async function sourceIfAny(ports: Ports, sourceId: string, fresh = false): Promise<SourceWithCredentials | undefined> {
  if (!hasIdKind("source", sourceId)) return undefined;
  const hit = fresh ? undefined : cachedEntry(ports, sourceId);
  if (hit) return hit.found;
  const { verified, unverified } = cachesOf(ports);
  const found = await readSource(ports, sourceId);
  const entry = { found, until: Date.now() + sourceCacheMs };
  // A source read again keeps its place among the verified; one gone (deleted) leaves them.
  if (found && verified.has(sourceId)) verified.set(sourceId, entry);
  else {
    verified.delete(sourceId);
    unverified.set(sourceId, entry);
  }
  return found;
}

/** Whether `sourceIfAny` would answer for the id from this instance's cache now, without reading the store. */
export const sourceCached = (ports: Ports, sourceId: string): boolean => cachedEntry(ports, sourceId) !== undefined;

/** The id's entry in this instance's caches, while it is fresh. */
function cachedEntry(ports: Ports, sourceId: string) {
  const { verified, unverified } = cachesOf(ports);
  const hit = verified.get(sourceId) ?? unverified.get(sourceId);
  return hit && hit.until > Date.now() ? hit : undefined;
}

/** Drops the source from this instance's caches: what changed it takes effect here at once. */
function forget(ports: Ports, sourceId: string) {
  const { verified, unverified } = cachesOf(ports);
  verified.delete(sourceId);
  unverified.delete(sourceId);
}

/** A request authenticated with the source `sourceIfAny` read: it joins the verified sources. */
export function sourceAuthenticated(ports: Ports, sourceId: string): void {
  const { verified, unverified } = cachesOf(ports);
  const entry = unverified.get(sourceId);
  if (!entry?.found) return;
  unverified.delete(sourceId);
  verified.set(sourceId, entry);
}

async function readSource(ports: Ports, sourceId: string): Promise<SourceWithCredentials | undefined> {
  const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: sourceKey(sourceId), ConsistentRead: true }));
  if (!Item || Item.deletedAt) return undefined;
  const { credentials, credentialsRevision, ...rest } = Item;
  return {
    source: sourceSchema.parse(rest),
    credentials: credentials as SourceCredentials,
    credentialsRevision: Number(credentialsRevision ?? 0),
  };
}

export const listSources = verb(
  pageInput,
  async (ports, ctx, input): Promise<Page<Source>> =>
    listByTenant(ports, "control", listKey(ctx.tenantId), input, (item) => sourceSchema.parse(item)),
);

export const getSource = verb(z.object({ id: z.string() }), async (ports, ctx, input) => {
  const { source } = await sourceForIngest(ports, input.id).catch(() => ({ source: undefined }));
  if (!source || source.tenantId !== ctx.tenantId)
    throw new SimrootError("source.not_found", "not_found", `No ingestion source ${input.id}`);
  return source;
});

/** New credentials replace the old at once (generated ones are regenerated; given ones must be given again). */
export const rotateSourceCredentials = verb(
  z.object({ id: z.string(), credentials: credentialsSchema.optional() }),
  async (ports, ctx, input) => {
    const current = await sourceForIngest(ports, input.id, true);
    if (current.source.tenantId !== ctx.tenantId)
      throw new SimrootError("source.not_found", "not_found", `No ingestion source ${input.id}`);
    const source = current.source;
    // A source verified with a public key is rotated to the sender's new key. Rotated bare, it would get a generated
    // secret and verify v1 HMAC signatures instead: asymmetric signing would end without anyone asking for it.
    if (current.credentials.webhookPublicKey && !input.credentials?.webhookPublicKey && !input.credentials?.webhookSecret) {
      throw new SimrootError(
        "source.credentials_required",
        "input",
        "The source verifies v1a signatures with the sender's public key: give its new key (or a webhookSecret to verify v1 HMAC signatures instead)",
        { issues: [{ path: "credentials.webhookPublicKey", message: "required to rotate a source that verifies v1a signatures" }] },
      );
    }
    // Trust anchors are not secrets: they carry over unless new ones are given.
    const trustAnchors = input.credentials?.trustAnchors ?? current.credentials.trustAnchors;
    const credentials = credentialsFor(source.format, { ...input.credentials, ...(trustAnchors ? { trustAnchors } : {}) });
    const now = ports.now();
    const rotatedAt = now.toISOString();
    const event = domainEvent(
      ctx,
      "source.credentials-rotated",
      source.id,
      { sourceId: source.id, rotatedAt, ...anchorsOf(credentials) },
      now,
    );
    await ports.ledger.commit({
      tenantId: ctx.tenantId,
      writes: [
        {
          Update: {
            TableName: ports.tables.control,
            Key: sourceKey(source.id),
            // Only over the credentials read: a rotation that carried over trust anchors another rotation has replaced
            // since (a compromised root dropped) would otherwise put them back.
            UpdateExpression: "SET credentials = :c, credentialsRotatedAt = :t, credentialsRevision = :next",
            // Nor into a source deleted since it was read (review 154: its tombstone kept the new secret).
            ConditionExpression: `tenantId = :tenant AND attribute_not_exists(deletedAt) AND ${
              current.credentialsRevision === 0 ? "attribute_not_exists(credentialsRevision)" : "credentialsRevision = :read"
            }`,
            ExpressionAttributeValues: {
              ":c": credentials,
              ":t": rotatedAt,
              ":tenant": ctx.tenantId,
              ":next": current.credentialsRevision + 1,
              ...(current.credentialsRevision === 0 ? {} : { ":read": current.credentialsRevision }),
            },
          },
        },
      ],
      events: [event],
      onConditionFailed: () =>
        new SimrootError(
          "store.conflict",
          "conflict",
          "The source was rotated or deleted meanwhile: read it again, and rotate it again if it is still there",
        ),
    });
    forget(ports, source.id);
    return { source: { ...source, credentialsRotatedAt: rotatedAt }, credentials };
  },
);

/**
 * Deletes a source: its sender is refused at once on this instance, within `sourceCacheMs` (5 s) on the others, as after
 * a rotation. The item stays as a tombstone (who it was, when it went) without its credentials, leaves the listing, and
 * its health goes with it (`noteIngest` counts nothing into a deleted source's).
 */
export const deleteSource = verb(z.object({ id: z.string() }), async (ports, ctx, input) => {
  const current = await sourceIfAny(ports, input.id, true);
  const notFound = () => new SimrootError("source.not_found", "not_found", `No ingestion source ${input.id}`);
  if (!current || current.source.tenantId !== ctx.tenantId) throw notFound();
  const now = ports.now();
  const deletedAt = now.toISOString();
  const { source } = current;
  const event = domainEvent(ctx, "source.deleted", source.id, { sourceId: source.id, name: source.name, deletedAt }, now);
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    writes: [
      {
        Update: {
          TableName: ports.tables.control,
          Key: sourceKey(source.id),
          UpdateExpression: "SET deletedAt = :at REMOVE credentials, gsi1pk, gsi1sk",
          ConditionExpression: "tenantId = :tenant AND attribute_not_exists(deletedAt)",
          ExpressionAttributeValues: { ":at": deletedAt, ":tenant": ctx.tenantId },
        },
      },
      // Its health goes with it: a tombstone an instance that still had the source cached cannot count into (it would
      // bring the health back for good: review 154), gone a day later.
      {
        Put: {
          TableName: ports.tables.control,
          Item: { ...sourceHealthKey(ctx.tenantId, source.id), deletedAt, expiresAt: Math.floor(now.getTime() / 1000) + 24 * 60 * 60 },
        },
      },
    ],
    events: [event],
    // Deleted meanwhile (on another instance): gone either way.
    onConditionFailed: notFound,
  });
  forget(ports, source.id);
  return { id: source.id, deletedAt };
});
