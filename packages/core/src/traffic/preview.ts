/**
 * Policy preview: before a rule is saved (created, replaced or removed), which of the
 * connections enforcement points reported recently would be decided differently, and which
 * devices the rule's selector matches. Both decisions come from the same pure engine PEPs run
 * (`compilePolicy`), over the tenant's current policy set and the candidate one.
 */
import * as z from "zod";
import type { Device } from "../device/device.ts";
import { SimrootError } from "../error.ts";
import { compilePolicy } from "../policy/compile.ts";
import { loadPolicySet } from "../policy/load.ts";
import { decisionSchema, policyRuleSchema, type DecisionInput, type PolicyRule } from "../policy/model.ts";
import { sessionCountry } from "../identity/session-country.ts";
import { compileSelector } from "../policy/selector.ts";
import { parseIpInto } from "../policy/net.ts";
import { verb } from "../verb.ts";
import { readFlows } from "./flows-read.ts";
import { devicesById } from "./graph.ts";

const maxReports = 1_000;
const maxChanges = 500;
const ipScratch = new Uint32Array(4);

export const previewPolicyInput = z
  .strictObject({
    upsert: policyRuleSchema.optional().meta({ description: "the rule as it would be saved (new, or replacing the one with its id)" }),
    remove: z.string().min(1).max(128).optional().meta({ description: "the id of the rule to remove" }),
  })
  .refine((input) => (input.upsert === undefined) !== (input.remove === undefined), {
    message: "give exactly one of upsert and remove",
    path: ["upsert"],
  })
  .meta({
    id: "PolicyPreviewRequest",
    example: { remove: "meters-telemetry" },
    oneOf: [{ required: ["upsert"] }, { required: ["remove"] }],
  });

const changedFlowSchema = z.object({
  deviceId: z.string(),
  destination: z.string(),
  port: z.number().int(),
  protocol: z.enum(["tcp", "udp"]),
  connections: z.number().int().meta({ description: "how many connections of this kind were reported" }),
  before: decisionSchema,
  after: decisionSchema,
});

export const policyPreviewSchema = z
  .object({
    matchedDevices: z.number().int().meta({ description: "devices the candidate rule's selector matches (the removed rule's, on remove)" }),
    sampleDevices: z.array(z.string()).meta({ description: "up to 20 of them" }),
    flowsEvaluated: z.number().int(),
    newlyAllowed: z.array(changedFlowSchema),
    newlyDenied: z.array(changedFlowSchema),
  })
  .meta({ id: "PolicyPreview" });
export type PolicyPreview = z.output<typeof policyPreviewSchema>;

function destinationOf(text: string): DecisionInput["destination"] {
  return parseIpInto(text, ipScratch) !== 0 ? { ip: text } : { fqdn: text };
}

/** The bearer and country a device's connections come over now (its first session), for re-deciding a flow. */
function contextOf(device: Device): Pick<DecisionInput, "bearer" | "country"> {
  const session = Object.values(device.identity.sessions)[0];
  const country = sessionCountry(device.identity, session);
  return { bearer: session?.bearer ?? "cellular", ...(country ? { country } : {}) };
}

export const previewPolicyChange = verb(previewPolicyInput, async (ports, ctx, input): Promise<PolicyPreview> => {
  const now = ports.now();
  const [current, devices, { flows }] = await Promise.all([
    loadPolicySet(ports, ctx.tenantId),
    devicesById(ports, ctx),
    readFlows(ports, ctx.tenantId, new Date(now.getTime() - 24 * 60 * 60 * 1000), now, maxReports),
  ]);
  let rules: PolicyRule[];
  let subject: PolicyRule | undefined;
  if (input.upsert) {
    const upsert = input.upsert;
    subject = upsert;
    rules = [...current.rules.filter((rule) => rule.id !== upsert.id), upsert];
  } else {
    subject = current.rules.find((rule) => rule.id === input.remove);
    if (!subject) throw new SimrootError("policy.not_found", "not_found", `No policy ${input.remove}`);
    rules = current.rules.filter((rule) => rule.id !== input.remove);
  }
  const before = compilePolicy(current);
  const after = compilePolicy({ ...current, rules });
  const matches = compileSelector(subject.selector);
  const matched = [...devices.values()].filter((device) => matches(device.labels));

  const seen = new Map<string, { flow: (typeof flows)[number]; connections: number }>();
  for (const flow of flows) {
    if (!flow.deviceId || !devices.has(flow.deviceId)) continue;
    const key = `${flow.deviceId}|${flow.destination}|${flow.port}|${flow.protocol}`;
    const entry = seen.get(key);
    if (entry) entry.connections += flow.count;
    else seen.set(key, { flow, connections: flow.count });
  }
  const newlyAllowed: PolicyPreview["newlyAllowed"] = [];
  const newlyDenied: PolicyPreview["newlyDenied"] = [];
  for (const { flow, connections } of seen.values()) {
    const device = devices.get(flow.deviceId!)!;
    const request: DecisionInput = {
      device: { id: device.id, state: device.state, labels: device.labels },
      destination: destinationOf(flow.destination),
      port: flow.port,
      protocol: flow.protocol,
      ...contextOf(device),
      at: now.getTime(),
    };
    const was = before.decide(request);
    const will = after.decide(request);
    if (was.allow === will.allow) continue;
    const change = {
      deviceId: device.id,
      destination: flow.destination,
      port: flow.port,
      protocol: flow.protocol,
      connections,
      before: { ...was },
      after: { ...will },
    };
    const list = will.allow ? newlyAllowed : newlyDenied;
    if (list.length < maxChanges) list.push(change);
  }
  return {
    matchedDevices: matched.length,
    sampleDevices: matched.slice(0, 20).map((device) => device.id),
    flowsEvaluated: seen.size,
    newlyAllowed,
    newlyDenied,
  };
});
