/**
 * The least-privilege policy model: which devices (by labels) may reach which destinations,
 * under which conditions, plus time-limited grants for third parties. Default deny; an
 * explicit deny rule beats any allow. `compilePolicy` turns a `PolicySet` into the engine
 * that PEPs and the what-if API run; the evaluation order is documented in `evaluate.ts`.
 */
import * as z from "zod";
import { bearerSchema } from "../catalogue/catalogue.ts";
import { deviceStates, labelKeySchema, labelRecord } from "../device/device.ts";
import { SimrootError } from "../error.ts";
import { hostPattern } from "./host.ts";
import { parseCidr, parseIpInto } from "./net.ts";

export const labelSelectorSchema = z
  .strictObject({
    // `__proto__` is refused (review 122: dropped by the record as it was built, the rule selected every device). New
    // selectors name keys devices can carry (`refuseLegacyForms`); stored ones parse as they were stored (review 126).
    matchLabels: labelRecord(z.string(), z.string().min(1)).optional(),
    matchExpressions: z
      .array(
        z
          .strictObject({
            key: z.string().min(1),
            operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
            values: z.array(z.string()).optional(),
          })
          .refine((e) => (e.operator === "In" || e.operator === "NotIn" ? (e.values?.length ?? 0) > 0 : (e.values?.length ?? 0) === 0), {
            message: "In and NotIn need values; Exists and DoesNotExist take none",
            path: ["values"],
          }),
      )
      .optional(),
  })
  .meta({
    id: "LabelSelector",
    description:
      "Kubernetes label selector: every matchLabels pair and every expression must hold. NotIn also matches devices without the key. An empty selector matches every device.",
    example: { matchLabels: { fleet: "meters" }, matchExpressions: [{ key: "site", operator: "In", values: ["lyon", "porto"] }] },
  });
export type LabelSelector = z.output<typeof labelSelectorSchema>;

const portSchema = z.number().int().min(0).max(65535);

export const portRangeSchema = z
  .strictObject({ from: portSchema, to: portSchema })
  .refine((range) => range.from <= range.to, { message: "from must not exceed to", path: ["to"] })
  .meta({ id: "PortRange", description: "an inclusive range of ports; from must not exceed to", example: { from: 8000, to: 8099 } });

export const destinationSchema = z
  .strictObject({
    fqdn: z
      .string()
      .max(253)
      .regex(hostPattern, "an exact host name or a leading wildcard such as *.example.com")
      .optional()
      .meta({ description: "exact host, or `*.example.com` for its subdomains (not the apex)" }),
    cidr: z
      .string()
      .max(64)
      .superRefine((text, ctx) => {
        const parsed = parseCidr(text);
        if (!parsed.ok) ctx.addIssue({ code: "custom", message: parsed.problem });
      })
      .optional()
      .meta({ description: "IPv4 or IPv6 network, host bits zero", example: "10.20.0.0/16" }),
    ports: z
      .array(z.union([portSchema, portRangeSchema]))
      .min(1)
      .optional()
      .meta({ description: "ports or inclusive ranges; absent means any port", example: [443, { from: 8000, to: 8099 }] }),
    protocol: z.enum(["tcp", "udp", "any"]),
  })
  .refine((d) => (d.fqdn === undefined) !== (d.cidr === undefined), { message: "give exactly one of fqdn and cidr", path: ["fqdn"] })
  .meta({
    id: "Destination",
    example: { fqdn: "*.telemetry.example.com", ports: [443], protocol: "tcp" },
    // Exactly one of the two, as the refinement above checks.
    oneOf: [{ required: ["fqdn"] }, { required: ["cidr"] }],
  });
export type Destination = z.output<typeof destinationSchema>;

export const weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export type Weekday = (typeof weekdays)[number];

/** True when the runtime knows `name` as a time zone (IANA names such as Europe/Paris). */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const clockTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "HH:MM, 00:00 to 23:59");

export const scheduleSchema = z
  .strictObject({
    timezone: z.string().refine(isTimeZone, "an IANA time zone such as Europe/Paris").meta({ example: "Europe/Paris" }),
    windows: z
      .array(
        z
          .strictObject({
            days: z
              .array(z.enum(weekdays))
              .min(1)
              .refine((days) => new Set(days).size === days.length, "days must be distinct")
              .meta({ uniqueItems: true }),
            start: clockTime,
            end: z.string().regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, "HH:MM, 00:01 to 24:00"),
          })
          .refine((w) => w.start !== w.end, {
            message: "start and end must differ (use 00:00 to 24:00 for a whole day)",
            path: ["end"],
          }),
      )
      .min(1),
  })
  .meta({
    id: "Schedule",
    description:
      "local wall-clock windows in `timezone`; `days` are the days a window starts on, and a window whose end is before its start runs past midnight into the next day",
    example: { timezone: "Europe/Paris", windows: [{ days: ["mon", "tue", "wed", "thu", "fri"], start: "22:00", end: "06:00" }] },
  });
export type Schedule = z.output<typeof scheduleSchema>;

export const countrySchema = z.string().regex(/^[A-Z]{2}$/, "an ISO 3166-1 alpha-2 code in capitals");

export const conditionsSchema = z
  .strictObject({
    bearers: z.array(bearerSchema).min(1).optional(),
    countries: z.array(countrySchema).min(1).optional(),
    schedule: scheduleSchema.optional(),
  })
  .meta({
    id: "Conditions",
    description:
      "every condition given must hold; an absent condition does not restrict. A request whose country is unknown does not satisfy a countries condition.",
  });
export type Conditions = z.output<typeof conditionsSchema>;

const idSchema = z.string().min(1).max(128);

export const policyRuleSchema = z
  .strictObject({
    id: idSchema,
    name: z.string().min(1).max(200),
    selector: labelSelectorSchema,
    destinations: z.array(destinationSchema).min(1),
    conditions: conditionsSchema.optional(),
    effect: z.enum(["allow", "deny"]),
  })
  .meta({
    id: "PolicyRule",
    description: "devices matching `selector` may (allow) or must not (deny) reach `destinations` while `conditions` hold",
    example: {
      id: "meters-telemetry",
      name: "Meters send telemetry",
      selector: { matchLabels: { fleet: "meters" } },
      destinations: [{ fqdn: "ingest.example.com", ports: [8883], protocol: "tcp" }],
      conditions: { bearers: ["cellular", "private-5g"] },
      effect: "allow",
    },
  });
export type PolicyRule = z.output<typeof policyRuleSchema>;

const instant = z.iso.datetime({ offset: true });

export const grantSchema = z
  .strictObject({
    id: idSchema,
    principal: z.string().min(1).max(256).meta({ description: "who is granted access: a user, vendor or service id" }),
    // A device id is 30 characters; one past 64 names no device, and past 2 KB it was a 500 from the store's key limit.
    target: z.union([z.strictObject({ deviceId: z.string().min(1).max(64) }), z.strictObject({ selector: labelSelectorSchema })]),
    destinations: z.array(destinationSchema).min(1),
    notBefore: instant,
    notAfter: instant,
    sessionRecording: z.boolean(),
    revokedAt: instant.optional().meta({ description: "the grant stops applying at this instant" }),
  })
  .refine((g) => Date.parse(g.notBefore) < Date.parse(g.notAfter), { message: "notBefore must precede notAfter", path: ["notAfter"] })
  .meta({
    id: "Grant",
    description: "time-limited third-party access, valid in [notBefore, notAfter) and until revokedAt",
    example: {
      id: "grt_vendor_42",
      principal: "vendor:acme/jane",
      target: { deviceId: "dev_01JD3Q4ZK8W9X2V5N6M7P8R9ST" },
      destinations: [{ cidr: "10.8.0.0/24", ports: [22], protocol: "tcp" }],
      notBefore: "2025-03-01T08:00:00Z",
      notAfter: "2025-03-01T12:00:00Z",
      sessionRecording: true,
    },
  });
export type Grant = z.output<typeof grantSchema>;

export const enforcementSettingsSchema = z
  .strictObject({
    quarantineDestinations: z.array(destinationSchema).default([]),
    failMode: z.enum(["closed", "open"]).default("closed").meta({
      description: "what a PEP does when it cannot decide (no policy, evaluation error): closed denies, open allows",
    }),
  })
  .meta({ id: "EnforcementSettings" });
export type EnforcementSettings = z.output<typeof enforcementSettingsSchema>;

const distinctIds = (items: { id: string }[]) => new Set(items.map((item) => item.id)).size === items.length;

export const policySetSchema = z
  .strictObject({
    version: z.number().int().nonnegative(),
    rules: z.array(policyRuleSchema).default([]).refine(distinctIds, "rule ids must be distinct"),
    grants: z.array(grantSchema).default([]).refine(distinctIds, "grant ids must be distinct"),
    settings: enforcementSettingsSchema.default({ quarantineDestinations: [], failMode: "closed" }),
  })
  .meta({ id: "PolicySet", description: "a tenant's whole policy; `version` increases with every change" });
export type PolicySet = z.output<typeof policySetSchema>;
export type PolicySetInput = z.input<typeof policySetSchema>;

const ipScratch = new Uint32Array(4);

export const decisionInputSchema = z
  .strictObject({
    device: z.strictObject({
      id: z.string().min(1),
      state: z.enum(deviceStates),
      labels: z.record(z.string(), z.string()),
    }),
    destination: z
      .strictObject({
        ip: z
          .string()
          .refine((ip) => parseIpInto(ip, ipScratch) !== 0, "an IPv4 or IPv6 address")
          .optional(),
        fqdn: z.string().max(253).optional(),
      })
      .refine((d) => d.ip !== undefined || d.fqdn !== undefined, "give the destination ip, fqdn or both"),
    port: portSchema,
    protocol: z.enum(["tcp", "udp"]),
    bearer: bearerSchema,
    country: countrySchema.optional(),
    at: z.number().int().meta({ description: "the instant decided for, epoch milliseconds" }),
    principal: z.string().min(1).optional().meta({ description: "the third party connecting under a grant" }),
  })
  .meta({
    id: "DecisionInput",
    example: {
      device: { id: "dev_01JD3Q4ZK8W9X2V5N6M7P8R9ST", state: "active", labels: { fleet: "meters" } },
      destination: { fqdn: "ingest.example.com", ip: "203.0.113.10" },
      port: 8883,
      protocol: "tcp",
      bearer: "cellular",
      country: "FR",
      at: 1740816000000,
    },
  });
export type DecisionInput = z.output<typeof decisionInputSchema>;

export const decisionReasons = [
  "allow.rule",
  "allow.grant",
  "allow.quarantine",
  "allow.fail-open",
  "deny.default",
  "deny.rule",
  "deny.revoked",
  "deny.suspended",
  "deny.quarantined",
  "deny.fail-closed",
] as const;
export type DecisionReason = (typeof decisionReasons)[number];

export const decisionSchema = z
  .object({
    allow: z.boolean(),
    reason: z.enum(decisionReasons),
    ruleId: z.string().optional(),
    grantId: z.string().optional(),
    sessionRecording: z.boolean().optional().meta({ description: "set on allow.grant: the PEP must record the session" }),
    explanation: z.string(),
  })
  .meta({
    id: "Decision",
    example: {
      allow: false,
      reason: "deny.rule",
      ruleId: "block-roaming",
      explanation: 'deny rule "Block roaming" (block-roaming) matches',
    },
  });
export type Decision = z.output<typeof decisionSchema>;

/** A host name whose last label is all digits: an address (WHATWG URL reads it so; no top-level domain is numeric). */
export const addressLikeHost = /(^|\.)\d+\.?$/;

/**
 * What a new rule, grant, quarantine destination or country rule may not say, though stored ones may (they compile as
 * they were stored: review 126, a set stored before these checks no longer compiled, and every PEP fell to its fail
 * mode): a host that is an address (review 122: decided as a name by what-if and as an address by a PEP; `cidr` names
 * it, and a stored one compiles as the address), and a selector key no device can carry. Throws `request.invalid`
 * naming each.
 */
export function refuseLegacyForms(input: unknown): void {
  const issues: { path: string; message: string }[] = [];
  const keyMessage = "label keys are lower-case, 1-63 characters: no device carries this one";
  const visit = (node: unknown, path: readonly (string | number)[]): void => {
    if (Array.isArray(node)) {
      for (const [index, item] of node.entries()) visit(item, [...path, index]);
      return;
    }
    if (node === null || typeof node !== "object") return;
    for (const [key, value] of Object.entries(node)) {
      const at = [...path, key];
      if (key === "fqdn" && typeof value === "string" && addressLikeHost.test(value)) {
        issues.push({ path: at.join("."), message: "an address, not a host name: give it as `cidr` (a /32 or /128)" });
      } else if (key === "matchLabels" && value !== null && typeof value === "object") {
        for (const label of Object.keys(value))
          if (!labelKeySchema.safeParse(label).success) issues.push({ path: [...at, label].join("."), message: keyMessage });
      } else if (key === "matchExpressions" && Array.isArray(value)) {
        value.forEach((expression: { key?: unknown }, index) => {
          if (typeof expression?.key === "string" && !labelKeySchema.safeParse(expression.key).success)
            issues.push({ path: [...at, index, "key"].join("."), message: keyMessage });
        });
      } else visit(value, at);
    }
  };
  visit(input, []);
  if (issues.length > 0)
    throw new SimrootError("request.invalid", "input", `Invalid input: ${issues[0]!.path}: ${issues[0]!.message}`, { issues });
}
