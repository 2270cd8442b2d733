/**
 * Automation rules: per tenant, an EventBridge event pattern over simroot's events (matched
 * against the same envelope EventBridge delivers, with the matcher the local bus uses) and
 * the actions to take when it matches. Dry-run rules record what they would have done.
 */
import * as z from "zod";
import { roles, type Role } from "../access/api-key.ts";
import { actingRole, unreadablePatternMatch, unrecordedRole } from "../access/event-readers.ts";
import { labelsSchema } from "../device/device.ts";
import { SimrootError } from "../error.ts";
import { storedPatternProblem, validateSimrootPattern } from "../event/pattern.ts";
import { hasIdKind, newId } from "../id.ts";
import { destinationSchema, refuseLegacyForms } from "../policy/model.ts";
import type { Outcome } from "../outcome.ts";
import { pageInput, type Page } from "../page.ts";
import { changesNothing, someChange } from "../patch.ts";
import { storedForm } from "../store/form.ts";
import { verb } from "../verb.ts";
import { assertPolicySize } from "../policy/records.ts";
import { cachedRecords, commitRecord, listRecords, notFound, readRecord, stale } from "./records.ts";
import type { Ports } from "../ports.ts";
import { readWebhook } from "../webhook/subscription.ts";

export const maxRulesPerTenant = 100;
/** The record of a rule's firing (automation/run.ts): a record, not a change, so no rule fires on it. */
export const firedEventType = "automation.fired";
/** Checked and counted in the commit that creates one (automation/records.ts), so concurrent creates cannot pass it. */
const ruleLimit = {
  max: maxRulesPerTenant,
  refuse: () => new SimrootError("rule.limit_reached", "conflict", `A tenant has at most ${maxRulesPerTenant} automation rules`),
};

const reason = z.string().min(1).max(500).optional().meta({ description: "recorded with the action; defaults to the rule and the event" });

export const actionSchema = z
  .discriminatedUnion("type", [
    z.strictObject({ type: z.literal("quarantine"), reason }),
    z.strictObject({ type: z.literal("suspend"), reason }),
    z.strictObject({ type: z.literal("revoke"), reason }),
    z.strictObject({ type: z.literal("add-labels"), labels: labelsSchema }),
    z.strictObject({ type: z.literal("remove-labels"), keys: z.array(z.string().max(63)).min(1).max(64) }),
    z.strictObject({
      type: z.literal("start-grant"),
      principal: z.string().min(1).max(256),
      destinations: z.array(destinationSchema).min(1).max(32),
      minutes: z
        .number()
        .int()
        .min(1)
        .max(7 * 24 * 60),
    }),
    z.strictObject({
      type: z.literal("end-grant"),
      grantId: z.string().optional().meta({ description: "the grant to end; defaults to the grant the event is about" }),
    }),
    z.strictObject({
      type: z.literal("notify"),
      webhookId: z.string().meta({ description: "the webhook subscription to deliver the event to" }),
    }),
    z.strictObject({ type: z.literal("open-incident"), severity: z.enum(["low", "medium", "high"]).default("high") }),
  ])
  .meta({ id: "AutomationAction" });
export type AutomationAction = z.output<typeof actionSchema>;

const patternSchema = z
  .record(z.string(), z.unknown())
  .superRefine((pattern, issues) => {
    try {
      validateSimrootPattern(pattern);
    } catch (error) {
      issues.addIssue({ code: "custom", message: (error as Error).message });
    }
    const types = pattern["detail-type"];
    if (Array.isArray(types) && types.length > 0 && types.every((type) => type === firedEventType)) {
      const message = `rules do not fire on ${firedEventType}, the record of a firing (a webhook subscription receives it)`;
      issues.addIssue({ code: "custom", path: ["detail-type"], message });
    }
  })
  .meta({
    description: "an EventBridge event pattern, matched against the envelope (source, detail-type, detail = the simroot event)",
    example: { source: ["simroot"], "detail-type": ["anomaly.detected"], detail: { data: { kind: ["new-destination"] } } },
  });

/** A rule's fields as a change names them: no defaults (a PATCH that leaves one out keeps the rule's own). */
const ruleChangeFields = {
  name: z.string().min(1).max(128),
  pattern: patternSchema,
  actions: z.array(actionSchema).min(1).max(10),
  dryRun: z.boolean().meta({ description: "record what the actions would do, do nothing" }),
  enabled: z.boolean(),
  rateLimit: z.strictObject({ max: z.number().int().min(1).max(10_000), perSeconds: z.number().int().min(1).max(86_400) }).meta({
    description:
      "at most `max` firings per `perSeconds` (across every instance); further matches are recorded as rate-limited, at most 10 a window (or `max`, if higher), and counted beyond",
  }),
};

/** A rule's fields, with a new rule's defaults. */
export const ruleFields = {
  ...ruleChangeFields,
  dryRun: ruleChangeFields.dryRun.default(false),
  enabled: ruleChangeFields.enabled.default(true),
  rateLimit: ruleChangeFields.rateLimit.default({ max: 10, perSeconds: 60 }),
};

export const createRuleInput = z.strictObject(ruleFields).meta({ id: "AutomationRuleInput" });

export const ruleSchema = z
  .object({
    id: z.string(),
    ...ruleFields,
    pattern: z.record(z.string(), z.unknown()),
    role: z.enum(roles).meta({
      description:
        "the role of the key that created or last changed the rule (a change that only disables it or makes it a dry run " +
        "keeps its role): it fires only on the events that role may read " +
        "(an operator's matches no `key.*`, `source.*`, `tenant.created` or `feed.epoch-advanced`, nor a record naming one)",
    }),
    problem: z.string().optional().meta({
      description: "why the rule does not run: its stored pattern fails a check made since it was written (review 90)",
    }),
    revision: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "AutomationRule" });
export type AutomationRule = z.output<typeof ruleSchema>;

/**
 * As stored, with the problem of a pattern that fails today's checks (a rule does not store one). A rule stored before
 * roles were recorded (review 90) is an operator's, as such a subscription is.
 */
const parse = ({ problem: _stored, ...item }: Record<string, unknown>) => {
  const problem = storedPatternProblem(item.pattern);
  return ruleSchema.parse({ role: unrecordedRole, ...item, ...(problem ? { problem } : {}) });
};

/**
 * The stored form of a rule this code reads and writes (its `format`, store/form.ts; an item without one is of form 1).
 * A change rewrites the rule whole from what the changing code parsed of it: code of the release before an attribute
 * put it back without it, silently (found by review 145, as review 143 found for subscriptions). Code older than the
 * form refuses the rule where it reads one to change or show it (503 `store.newer_format`) and changes nothing; the
 * automation consumer's matching changes no rule and reads it as it knows it.
 */
export const ruleFormat = 1;

/** A rule as shown or changed, refused when of a form this code does not know (`ruleFormat`). */
const parseOfKnownForm = (item: Record<string, unknown>) => parse(storedForm(item, ruleFormat, `Rule ${String(item.id)}`));

/** The rule as it is put: marked with its form. */
const itemOf = (rule: AutomationRule) => ({ ...rule, format: ruleFormat });

/** Refuses a pattern that may match an event the rule's role may not read (access/event-readers.ts, review 90). */
function assertReadablePattern(role: Role, pattern: Record<string, unknown>) {
  const problem = unreadablePatternMatch(role, pattern);
  if (!problem) return;
  const path = problem.path ? `pattern.${problem.path}` : "pattern";
  throw new SimrootError("request.invalid", "input", `The rule may not match what its role does not read: ${problem.message}`, {
    issues: [{ path, message: problem.message }],
  });
}

/** Refuses a notify action naming a webhook subscription the tenant does not have: it could only ever skip. */
async function assertNotifyTargets(ports: Ports, tenantId: string, actions: readonly { type: string; webhookId?: string }[] | undefined) {
  for (const [index, action] of (actions ?? []).entries()) {
    if (action.type !== "notify" || !action.webhookId) continue;
    if (await readWebhook(ports, tenantId, action.webhookId)) continue;
    const message = `no webhook subscription ${action.webhookId} in this tenant`;
    throw new SimrootError("request.invalid", "input", `The rule cannot notify: ${message}`, {
      issues: [{ path: `actions.${index}.webhookId`, message }],
    });
  }
}

/**
 * Refuses an end-grant action naming something that is not a grant id (an empty one included): it could only ever fail,
 * and it does not fall back to the grant the event is about (review 128). Checked on what a request gives, not on what
 * is stored (a rule stored with one still reads, and its firings say why they failed).
 */
function assertGrantTargets(actions: readonly { type: string; grantId?: string }[] | undefined) {
  for (const [index, action] of (actions ?? []).entries()) {
    if (action.type !== "end-grant" || action.grantId === undefined || hasIdKind("grant", action.grantId)) continue;
    const message = "not a grant id (grt_ and 26 characters); leave it out to end the grant the event is about";
    throw new SimrootError("request.invalid", "input", `The rule cannot end that grant: ${message}`, {
      issues: [{ path: `actions.${index}.grantId`, message }],
    });
  }
}

export const createRule = verb(createRuleInput, async (ports, ctx, input): Promise<Outcome<AutomationRule>> => {
  refuseLegacyForms(input);
  assertGrantTargets(input.actions);
  const role = actingRole(ctx);
  assertReadablePattern(role, input.pattern);
  await assertNotifyTargets(ports, ctx.tenantId, input.actions);
  const now = ports.now().toISOString();
  const rule: AutomationRule = { id: newId("rule"), ...input, role, revision: 1, createdAt: now, updatedAt: now };
  assertPolicySize("rule", rule, "actions");
  const event = await commitRecord(ports, ctx, "rule", rule.id, { item: itemOf(rule), limit: ruleLimit }, "automation.rule-created", {
    rule,
  });
  return { value: rule, events: [event] };
});

export const getRule = verb(z.object({ id: z.string() }), async (ports, ctx, input): Promise<AutomationRule> => {
  const item = await readRecord(ports, ctx.tenantId, "rule", input.id);
  if (!item) throw notFound("rule", input.id);
  return parseOfKnownForm(item);
});

export const listRules = verb(
  pageInput,
  async (ports, ctx, input): Promise<Page<AutomationRule>> => listRecords(ports, ctx.tenantId, "rule", input, parseOfKnownForm),
);

/** The tenant's rules, whole (at most `maxRulesPerTenant`), for the automation consumer: read at most every `recordCacheMs`. */
export const tenantRules = (ports: Ports, tenantId: string) => cachedRecords(ports, tenantId, "rule", parse);

export const updateRuleInput = z.object({
  id: z.string(),
  ifRevision: z.number().int().positive(),
  // Without the defaults: in a partial object zod fills a field's default when it is left out, so a change naming only
  // the rate limit turned a dry-run rule into one that acts, and re-enabled a disabled one.
  changes: someChange(z.strictObject(ruleChangeFields).partial()),
});

/** True for a change that only disables the rule or makes it a dry run. */
const onlyStops = (changes: Record<string, unknown>) =>
  Object.entries(changes).every(([field, value]) => (field === "enabled" && value === false) || (field === "dryRun" && value === true));

export const updateRule = verb(updateRuleInput, async (ports, ctx, input): Promise<Outcome<AutomationRule>> => {
  refuseLegacyForms(input);
  assertGrantTargets(input.changes.actions);
  const current = await getRule(ports, ctx, { id: input.id });
  if (current.revision !== input.ifRevision) throw stale();
  if (changesNothing(current, input.changes)) return { value: current, events: [] };
  // A change makes the rule the changer's (as a subscription): an operator's change to an admin's rule on key events is
  // refused. A change that only stops the rule acting grants nothing, so the rule stays its role's: an operator may
  // disable an admin's rule, or make it a dry run, as it may remove it.
  const stops = onlyStops(input.changes);
  const role = stops ? current.role : actingRole(ctx);
  // A stop is never refused for what the rule matches (a rule stored before roles were recorded counts as an
  // operator's, and one of those matching key events could not be disabled: review 91).
  if (!stops) assertReadablePattern(role, input.changes.pattern ?? current.pattern);
  await assertNotifyTargets(ports, ctx.tenantId, input.changes.actions);
  const { problem: _problem, ...stored } = current;
  const rule: AutomationRule = {
    ...stored,
    ...input.changes,
    role,
    revision: current.revision + 1,
    updatedAt: ports.now().toISOString(),
  };
  assertPolicySize("rule", rule, "actions");
  const event = await commitRecord(
    ports,
    ctx,
    "rule",
    rule.id,
    { item: itemOf(rule), previousRevision: current.revision },
    "automation.rule-updated",
    {
      rule,
      changes: input.changes,
    },
  );
  return { value: rule, events: [event] };
});

/** Removes a rule at the revision the caller read (`ifRevision`; the API requires it, from If-Match). */
export const removeRuleInput = z.object({ id: z.string(), ifRevision: z.number().int().positive().optional() });

export const removeRule = verb(removeRuleInput, async (ports, ctx, input): Promise<Outcome<{ id: string }>> => {
  const current = await getRule(ports, ctx, input);
  if (input.ifRevision !== undefined && current.revision !== input.ifRevision) throw stale();
  const event = await commitRecord(ports, ctx, "rule", input.id, { previousRevision: current.revision }, "automation.rule-removed", {
    name: current.name,
  });
  return { value: { id: input.id }, events: [event] };
});
