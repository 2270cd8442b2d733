/**
 * Ingestion sources: an operator core, eSIM manager or platform that posts webhooks to
 * `/v1/ingest/{sourceId}`. Each belongs to one tenant, speaks one format and has its own
 * credentials, generated here where the format allows and shown once.
 */
import { randomBytes } from "node:crypto";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { bearerSchema } from "../catalogue/catalogue.ts";
import { SimrootError } from "../error.ts";
import { hasIdKind, newId } from "../id.ts";
import { listByTenant, pageInput, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";
import { writeTransaction } from "../store/transaction.ts";
import { verb } from "../verb.ts";
import { ingestFormats, type IngestFormat, type SourceCredentials } from "./adapter.ts";
import { ed25519PublicKey } from "./adapters/keys.ts";

export const sourceSchema = z
  .object({
    id: z.string().meta({ example: "src_01JD3Q4ZK8W9X2V5N6M7P8R9ST" }),
    tenantId: z.string(),
    name: z.string(),
    format: z.enum(ingestFormats),
    ingestPath: z.string().meta({ description: "where the source posts its webhooks" }),
    defaultBearer: bearerSchema.optional().meta({ description: "the bearer a cellular report stands for (private-5g for a private core)" }),
    createdAt: z.string(),
    credentialsRotatedAt: z.string(),
  })
  .meta({ id: "Source" });
export type Source = z.output<typeof sourceSchema>;

export const credentialsSchema = z
  .object({
    bearerToken: z.string().min(16).optional(),
    basicUser: z.string().min(1).optional(),
    basicPassword: z.string().min(12).optional(),
    webhookSecret: z.string().regex(/^whsec_[A-Za-z0-9+/=]{16,}$/).optional(),
    webhookPublicKey: z
      .string()
      .min(32)
      .max(1024)
      .refine((key) => ed25519PublicKey(key) !== undefined, "must be whpk_<base64 of a 32-byte Ed25519 key> or an Ed25519 PEM public key")
      .optional(),
    twilioAuthToken: z.string().min(16).optional(),
    twilioSharedKeySecret: z.string().min(16).optional(),
  })
  .meta({ id: "SourceCredentials", description: "shown once, at creation and rotation" });

export const createSourceInput = z.strictObject({
  name: z.string().min(1).max(128),
  format: z.enum(ingestFormats),
  /** Credentials the sender already has (a Twilio auth token, an ed25519 public key); the rest are generated. */
  credentials: credentialsSchema.optional(),
  defaultBearer: bearerSchema.optional(),
});

const token = (bytes = 32) => randomBytes(bytes).toString("base64url");

/** Fills in every credential the format needs and the caller did not bring. */
function credentialsFor(format: IngestFormat, given: SourceCredentials = {}): SourceCredentials {
  switch (format) {
    case "camara":
    case "nef":
    case "eim":
      return { bearerToken: given.bearerToken ?? token() };
    case "datastreamer":
      return { basicUser: given.basicUser ?? `simroot-${token(6)}`, basicPassword: given.basicPassword ?? token() };
    case "simroot":
      return {
        webhookSecret: given.webhookSecret ?? `whsec_${randomBytes(24).toString("base64")}`,
        ...(given.webhookPublicKey ? { webhookPublicKey: given.webhookPublicKey } : {}),
      };
    case "supersim":
      if (!given.twilioAuthToken) {
        throw new SimrootError("source.credentials_required", "input", "A supersim source needs the Twilio account's auth token", {
          issues: [{ path: "credentials.twilioAuthToken", message: "required for format supersim" }],
        });
      }
      return { twilioAuthToken: given.twilioAuthToken, ...(given.twilioSharedKeySecret ? { twilioSharedKeySecret: given.twilioSharedKeySecret } : {}) };
  }
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
    createdAt: now,
    credentialsRotatedAt: now,
  };
  const credentials = credentialsFor(input.format, input.credentials);
  await writeTransaction(ports.db, [
    {
      Put: {
        TableName: ports.tables.control,
        Item: { ...sourceKey(id), gsi1pk: listKey(ctx.tenantId), gsi1sk: id, ...source, credentials },
        ConditionExpression: "attribute_not_exists(pk)",
      },
    },
  ]);
  return { source, credentials };
});

type SourceWithCredentials = { source: Source; credentials: SourceCredentials };
const recentSources = new WeakMap<object, Map<string, { found: SourceWithCredentials; until: number }>>();
const sourceCacheMs = 5_000;

/**
 * A source for the ingestion endpoint, cached for a few seconds (every webhook needs it).
 * `fresh` skips the cache: the endpoint asks again before refusing credentials, so a
 * rotation takes effect at once.
 */
export async function sourceForIngest(ports: Ports, sourceId: string, fresh = false): Promise<SourceWithCredentials> {
  let cache = recentSources.get(ports.db);
  if (!cache) recentSources.set(ports.db, (cache = new Map()));
  const hit = cache.get(sourceId);
  if (!fresh && hit && hit.until > Date.now()) return hit.found;
  const found = await readSource(ports, sourceId);
  if (cache.size > 10_000) cache.clear();
  cache.set(sourceId, { found, until: Date.now() + sourceCacheMs });
  return found;
}

async function readSource(ports: Ports, sourceId: string): Promise<SourceWithCredentials> {
  const { Item } = hasIdKind("source", sourceId)
    ? await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: sourceKey(sourceId), ConsistentRead: true }))
    : { Item: undefined };
  if (!Item || Item.deletedAt) throw new SimrootError("source.not_found", "not_found", `No ingestion source ${sourceId}`);
  const { credentials, ...rest } = Item;
  return { source: sourceSchema.parse(rest), credentials: credentials as SourceCredentials };
}

export const listSources = verb(pageInput, async (ports, ctx, input): Promise<Page<Source>> =>
  listByTenant(ports, "control", listKey(ctx.tenantId), input, (item) => sourceSchema.parse(item)),
);

export const getSource = verb(z.object({ id: z.string() }), async (ports, ctx, input) => {
  const { source } = await sourceForIngest(ports, input.id).catch(() => ({ source: undefined }));
  if (!source || source.tenantId !== ctx.tenantId) throw new SimrootError("source.not_found", "not_found", `No ingestion source ${input.id}`);
  return source;
});

/** New credentials replace the old at once (generated ones are regenerated; given ones must be given again). */
export const rotateSourceCredentials = verb(
  z.object({ id: z.string(), credentials: credentialsSchema.optional() }),
  async (ports, ctx, input) => {
    const source = await getSource(ports, ctx, { id: input.id });
    const credentials = credentialsFor(source.format, input.credentials);
    const rotatedAt = ports.now().toISOString();
    await writeTransaction(ports.db, [
      {
        Update: {
          TableName: ports.tables.control,
          Key: sourceKey(source.id),
          UpdateExpression: "SET credentials = :c, credentialsRotatedAt = :t",
          ConditionExpression: "tenantId = :tenant",
          ExpressionAttributeValues: { ":c": credentials, ":t": rotatedAt, ":tenant": ctx.tenantId },
        },
      },
    ]);
    return { source: { ...source, credentialsRotatedAt: rotatedAt }, credentials };
  },
);
