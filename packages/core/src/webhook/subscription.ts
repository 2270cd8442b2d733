/**
 * Outbound webhook subscriptions: per tenant, an event pattern, a URL and a signing scheme.
 * The signing secret (v1) is shown once, at creation; a v1a subscription shows its public
 * key always. A subscription the receiver answers `410 Gone` is disabled, and says why.
 * The secret is stored sealed (`ports.secrets`, bound to the tenant and subscription), never in
 * plaintext; the delivery worker opens it for each attempt.
 * A subscription holds the role of the key that made or last changed it, and is sent only the events that role may
 * read through the API (access/event-readers.ts, review 87).
 */
import * as z from "zod";
import { roles } from "../access/api-key.ts";
import { actingRole, unrecordedRole } from "../access/event-readers.ts";
import type { RequestContext } from "../context.ts";
import { SimrootError, isSimrootError } from "../error.ts";
import { storedPatternProblem, validateSimrootPattern } from "../event/pattern.ts";
import { newId } from "../id.ts";
import type { Outcome } from "../outcome.ts";
import { pageInput, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";
import { changesNothing, someChange } from "../patch.ts";
import { storedForm } from "../store/form.ts";
import { verb } from "../verb.ts";
import { cachedRecords, commitRecord, listRecords, notFound, readRecord, stale } from "../automation/records.ts";
import { newSigningKeys, signingSchemes } from "./sign.ts";
import { webhookUrlProblem } from "./target.ts";

export const maxWebhooksPerTenant = 50;
/** Checked and counted in the commit that creates one (automation/records.ts), so concurrent creates cannot pass it. */
const webhookLimit = {
  max: maxWebhooksPerTenant,
  refuse: () => new SimrootError("webhook.limit_reached", "conflict", `A tenant has at most ${maxWebhooksPerTenant} webhook subscriptions`),
};

const patternSchema = z.record(z.string(), z.unknown()).superRefine((pattern, issues) => {
  try {
    validateSimrootPattern(pattern);
  } catch (error) {
    issues.addIssue({ code: "custom", message: (error as Error).message });
  }
});

export const createWebhookInput = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .meta({ description: "where deliveries are POSTed" }),
    pattern: patternSchema.meta({
      description:
        'an EventBridge event pattern over the envelope; an empty `{}` is not allowed (use `{ "source": ["simroot"] }` for everything)',
    }),
    signing: z.enum(signingSchemes).default("v1").meta({ description: "Standard Webhooks v1 (HMAC-SHA256) or v1a (ed25519)" }),
    description: z.string().max(500).optional(),
  })
  .meta({ id: "WebhookInput" });

export const webhookSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    pattern: z.record(z.string(), z.unknown()),
    signing: z.enum(signingSchemes),
    description: z.string().optional(),
    enabled: z.boolean(),
    disabledReason: z.string().optional(),
    publicKey: z.string().optional().meta({ description: "v1a: the `whpk_` key receivers verify with" }),
    previousSecretUntil: z
      .string()
      .optional()
      .meta({
        description:
          "after a rotation of the signing secret: until when each delivery also carries a signature by the previous one " +
          "(Standard Webhooks: several signatures in `webhook-signature`), so that receivers move to the new one without a gap",
      }),
    previousPublicKey: z
      .string()
      .optional()
      .meta({ description: "v1a, after a rotation: the previous `whpk_` key, valid until `previousSecretUntil`" }),
    problem: z.string().optional().meta({
      description: "why the subscription is sent nothing: its stored pattern fails a check made since it was written (review 90)",
    }),
    role: z.enum(roles).meta({
      description:
        "the role of the key that created or last changed the subscription: it is sent only the events that role may read " +
        "(an operator's is not sent `key.*`, `source.*`, `tenant.created` or `feed.epoch-advanced`, nor a record naming one)",
    }),
    revision: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "Webhook" });
export type Webhook = z.output<typeof webhookSchema>;
/** As stored: the signing secret sealed (`secret` in plaintext only on items written before secrets were sealed). */
export type StoredWebhook = Webhook & { readonly sealedSecret?: string; readonly secret?: string; readonly previousSealedSecret?: string };

/** A URL as shown and audited: without the credentials a subscription stored before they were refused may carry. */
const withoutCredentials = (url: string) => {
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return url;
  parsed.username = "";
  parsed.password = "";
  return parsed.href;
};
const publicView = ({ secret: _secret, sealedSecret: _sealed, previousSealedSecret: _previous, ...webhook }: StoredWebhook): Webhook =>
  webhookSchema.parse({ ...webhook, url: withoutCredentials(webhook.url) });
/** As stored, with the problem of a pattern that fails today's checks (a subscription does not store one). */
const stored = ({ problem: _stored, ...item }: Record<string, unknown>) =>
  ({
    ...webhookSchema.parse({ role: unrecordedRole, ...item, problem: storedPatternProblem(item.pattern) }),
    ...(typeof item.sealedSecret === "string" ? { sealedSecret: item.sealedSecret } : {}),
    ...(typeof item.secret === "string" ? { secret: item.secret } : {}),
    ...(typeof item.previousSealedSecret === "string" ? { previousSealedSecret: item.previousSealedSecret } : {}),
  }) as StoredWebhook;

function sealer(ports: Ports) {
  if (!ports.secrets) {
    throw new SimrootError("secrets.unconfigured", "unavailable", "No secrets key is configured: webhook signing secrets cannot be kept");
  }
  return ports.secrets;
}
const binding = (tenantId: string, id: string) => ({ tenantId, record: `webhook/${id}` });

/** The subscription's signing secret, opened for one delivery. */
export async function webhookSecret(ports: Ports, tenantId: string, webhook: StoredWebhook): Promise<string> {
  if (webhook.sealedSecret) return sealer(ports).open(webhook.sealedSecret, binding(tenantId, webhook.id));
  if (webhook.secret) return webhook.secret;
  throw new Error(`webhook ${webhook.id} has no signing secret`);
}

/** What a delivery attempted at `at` is signed with: the secret, and the previous one until `previousSecretUntil`. */
export async function webhookSecrets(ports: Ports, tenantId: string, webhook: StoredWebhook, at: Date): Promise<string[]> {
  const secret = await webhookSecret(ports, tenantId, webhook);
  const previous =
    webhook.previousSealedSecret && webhook.previousSecretUntil && at.getTime() < Date.parse(webhook.previousSecretUntil)
      ? await sealer(ports).open(webhook.previousSealedSecret, binding(tenantId, webhook.id))
      : undefined;
  return previous === undefined ? [secret] : [secret, previous];
}

/** How long a rotated-out signing secret still signs (beside the new one): a day for receivers to take the new one. */
export const previousSecretSeconds = 24 * 60 * 60;

/**
 * The stored form of a subscription this code reads and writes (its `format`, store/form.ts; an item without one is of
 * form 1). Every change rewrites the subscription whole from what the changing code read of it: code of the release
 * before an attribute put it back without it, silently (review 143). Code older than the form refuses the subscription
 * where it reads one to change or show it (`readWebhook`, the listing: 503 `store.newer_format`; a delivery's attempt is
 * left to the worker's retries) and changes nothing; matching events against the tenant's subscriptions and queuing
 * their deliveries (`readWebhookToQueue`) change none of them.
 */
export const webhookFormat = 1;

/** The subscription as it is put: marked with its form. */
const itemOf = (webhook: StoredWebhook) => ({ ...webhook, format: webhookFormat });

/** `stored`, refused when of a form this code does not know (`webhookFormat`). */
const storedOfKnownForm = (item: Record<string, unknown>) => stored(storedForm(item, webhookFormat, `Webhook ${String(item.id)}`));

/**
 * Refuses a URL deliveries may not go to (target.ts): a loopback, private or link-local address, or localhost; and one
 * carrying credentials (`user:password@`), which would be stored and shown as the URL is, to every reader of the
 * subscription and in its audit records, where the signing secret is sealed (review 69). Receivers authenticate
 * deliveries by their signature.
 */
function assertDeliverable(ports: Ports, url: string) {
  const { username, password } = new URL(url);
  if (username || password) {
    const message = "a URL may not carry credentials (user:password@): receivers verify the delivery's signature";
    throw new SimrootError("webhook.url_credentials", "input", `Webhook URLs carry no credentials: ${message}`, {
      issues: [{ path: "url", message }],
    });
  }
  const problem = webhookUrlProblem(url, ports.webhookTargets ?? "public");
  if (problem) {
    throw new SimrootError("webhook.url_not_public", "input", `Webhooks are delivered to public addresses only: ${problem}`, {
      issues: [{ path: "url", message: problem }],
    });
  }
}

export const createWebhook = verb(createWebhookInput, async (ports, ctx, input): Promise<Outcome<Webhook & { secret?: string }>> => {
  assertDeliverable(ports, input.url);
  const keys = newSigningKeys(input.signing);
  const now = ports.now().toISOString();
  const id = newId("webhook");
  const webhook: StoredWebhook = {
    id,
    ...input,
    enabled: true,
    ...(input.signing === "v1a" ? { publicKey: keys.verifyWith } : {}),
    role: actingRole(ctx),
    sealedSecret: await sealer(ports).seal(keys.secret, binding(ctx.tenantId, id)),
    revision: 1,
    createdAt: now,
    updatedAt: now,
  };
  const event = await commitRecord(ports, ctx, "webhook", webhook.id, { item: itemOf(webhook), limit: webhookLimit }, "webhook.created", {
    webhook: publicView(webhook),
  });
  return { value: { ...publicView(webhook), ...(input.signing === "v1" ? { secret: keys.secret } : {}) }, events: [event] };
});

export async function readWebhook(ports: Ports, tenantId: string, id: string): Promise<StoredWebhook | undefined> {
  const item = await readRecord(ports, tenantId, "webhook", id);
  return item ? storedOfKnownForm(item) : undefined;
}

/**
 * The subscription as this code knows it, whatever its form, for what changes none: queuing a delivery of an event to it
 * (review 145: refused, an older instance failed the event for every subscription of the tenant during a deploy, until
 * it was dead-lettered). Its attempt reads it with `readWebhook`, and waits for the newer code.
 */
export async function readWebhookToQueue(ports: Ports, tenantId: string, id: string): Promise<StoredWebhook | undefined> {
  const item = await readRecord(ports, tenantId, "webhook", id);
  return item ? stored(item) : undefined;
}

export const getWebhook = verb(z.object({ id: z.string() }), async (ports, ctx, input): Promise<Webhook> => {
  const webhook = await readWebhook(ports, ctx.tenantId, input.id);
  if (!webhook) throw notFound("webhook", input.id);
  return publicView(webhook);
});

export const listWebhooks = verb(
  pageInput,
  async (ports, ctx, input): Promise<Page<Webhook>> =>
    listRecords(ports, ctx.tenantId, "webhook", input, (item) => publicView(storedOfKnownForm(item))),
);

/** The tenant's subscriptions, whole, for the webhooks consumer: read at most every `recordCacheMs`. */
export const tenantWebhooks = (ports: Ports, tenantId: string) => cachedRecords(ports, tenantId, "webhook", stored);

export const updateWebhookInput = z.object({
  id: z.string(),
  ifRevision: z.number().int().positive(),
  changes: someChange(
    z
      .strictObject({ url: createWebhookInput.shape.url, pattern: patternSchema, description: z.string().max(500), enabled: z.boolean() })
      .partial(),
  ),
});

export async function changeWebhook(
  ports: Ports,
  ctx: RequestContext,
  current: StoredWebhook,
  changes: Partial<StoredWebhook>,
  type: string,
) {
  const { problem: _problem, ...kept } = current;
  const next: StoredWebhook = { ...kept, ...changes, revision: current.revision + 1, updatedAt: ports.now().toISOString() };
  if (next.enabled) delete (next as { disabledReason?: string }).disabledReason;
  const event = await commitRecord(ports, ctx, "webhook", current.id, { item: itemOf(next), previousRevision: current.revision }, type, {
    webhook: publicView(next),
  });
  return { value: publicView(next), events: [event] };
}

export const updateWebhook = verb(updateWebhookInput, async (ports, ctx, input): Promise<Outcome<Webhook>> => {
  const current = await readWebhook(ports, ctx.tenantId, input.id);
  if (!current) throw notFound("webhook", input.id);
  if (current.revision !== input.ifRevision) throw stale();
  if (changesNothing(current, input.changes)) return { value: publicView(current), events: [] };
  if (input.changes.url !== undefined) assertDeliverable(ports, input.changes.url);
  // A change makes it the changer's: an operator who points an admin's subscription elsewhere is not sent its events.
  return changeWebhook(ports, ctx, current, { ...input.changes, role: actingRole(ctx) }, "webhook.updated");
});

/**
 * A new signing secret (v1) or key pair (v1a) for the subscription, shown in this answer only. Until
 * `previousSecretUntil` (a day) every delivery is signed with both, new and previous, so a receiver verifies throughout
 * its switch; a secret that leaked stops signing at once only by removing the subscription. A second rotation within the
 * day replaces the first one's new secret as the previous. The subscription keeps its role: a rotation changes what
 * signs, not what is sent. Only an admin rotates an admin's subscription (review 110: an operator took the only secret
 * that would sign and, as a change made the subscription the operator's, cut the admin's receiver off `key.*`). Without
 * `ifRevision` a rotation racing another change is made again on what that change left (review 110: answered 412).
 */
export const rotateWebhookSecretInput = z.object({ id: z.string(), ifRevision: z.number().int().positive().optional() });

export const rotateWebhookSecret = verb(
  rotateWebhookSecretInput,
  async (ports, ctx, input): Promise<Outcome<Webhook & { secret?: string }>> => {
    for (let attempt = 1; ; attempt++) {
      const current = await readWebhook(ports, ctx.tenantId, input.id);
      if (!current) throw notFound("webhook", input.id);
      if (input.ifRevision !== undefined && current.revision !== input.ifRevision) throw stale();
      if (current.role === "admin" && actingRole(ctx) !== "admin")
        throw new SimrootError("auth.forbidden", "forbidden", "Only an admin rotates the secret of an admin's subscription");
      try {
        return await rotateOnce(ports, ctx, current);
      } catch (error) {
        const raced = isSimrootError(error) && error.code === "request.precondition_failed";
        if (!raced || input.ifRevision !== undefined || attempt >= 5) throw error;
      }
    }
  },
);

async function rotateOnce(ports: Ports, ctx: RequestContext, current: StoredWebhook): Promise<Outcome<Webhook & { secret?: string }>> {
  const keys = newSigningKeys(current.signing);
  const seal = sealer(ports);
  const previous =
    current.sealedSecret ?? (current.secret ? await seal.seal(current.secret, binding(ctx.tenantId, current.id)) : undefined);
  const until = new Date(ports.now().getTime() + previousSecretSeconds * 1000).toISOString();
  const { secret: _plaintext, ...kept } = current;
  const changed = await changeWebhook(
    ports,
    ctx,
    kept,
    {
      sealedSecret: await seal.seal(keys.secret, binding(ctx.tenantId, current.id)),
      ...(previous ? { previousSealedSecret: previous, previousSecretUntil: until } : {}),
      ...(current.signing === "v1a"
        ? { publicKey: keys.verifyWith, ...(current.publicKey ? { previousPublicKey: current.publicKey } : {}) }
        : {}),
    },
    "webhook.secret-rotated",
  );
  return { ...changed, value: { ...changed.value, ...(current.signing === "v1" ? { secret: keys.secret } : {}) } };
}

/** Removes a subscription at the revision the caller read (`ifRevision`; the API requires it, from If-Match). */
export const removeWebhookInput = z.object({ id: z.string(), ifRevision: z.number().int().positive().optional() });

export const removeWebhook = verb(removeWebhookInput, async (ports, ctx, input): Promise<Outcome<{ id: string }>> => {
  const current = await readWebhook(ports, ctx.tenantId, input.id);
  if (!current) throw notFound("webhook", input.id);
  if (input.ifRevision !== undefined && current.revision !== input.ifRevision) throw stale();
  const event = await commitRecord(ports, ctx, "webhook", input.id, { previousRevision: current.revision }, "webhook.removed", {
    url: withoutCredentials(current.url),
  });
  return { value: { id: input.id }, events: [event] };
});
