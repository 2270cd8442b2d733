/**
 * What-if: how the tenant's current policy decides a connection of one of its devices. The
 * device is named by any identifier it holds; its state and labels come from the store;
 * the decision comes from the same pure engine (`compilePolicy(set).decide`) the
 * enforcement points run.
 */
import * as z from "zod";
import { bearerSchema, deviceRefSchema, type Bearer } from "../catalogue/catalogue.ts";
import { deviceStates } from "../device/device.ts";
import { getDevice } from "../device/read.ts";
import { resolveDevice } from "../device/store.ts";
import { SimrootError } from "../error.ts";
import { verb } from "../verb.ts";
import { compilePolicy } from "./compile.ts";
import { loadPolicySet } from "./load.ts";
import { decisionInputSchema, decisionSchema } from "./model.ts";

const request = decisionInputSchema.shape;

export const whatIfInput = z
  .strictObject({
    device: deviceRefSchema,
    destination: request.destination,
    port: request.port,
    protocol: request.protocol,
    bearer: bearerSchema.optional().meta({
      description:
        "the bearer the connection arrives on; absent, it is unknown and meets no bearer condition, as at an enforcement point that knows no bearer for the address",
    }),
    country: request.country,
    at: z.iso.datetime({ offset: true }).optional().meta({ description: "the instant to decide for; now when absent" }),
    principal: request.principal,
  })
  .meta({
    id: "WhatIfRequest",
    example: {
      device: { imsi: "208011234567890" },
      destination: { fqdn: "ingest.example.com", ip: "203.0.113.10" },
      port: 8883,
      protocol: "tcp",
      bearer: "cellular",
      country: "FR",
    },
  });

export const whatIfDecisionSchema = decisionSchema
  .extend({
    deviceId: z.string(),
    deviceState: z.enum(deviceStates),
    at: z.string().meta({ description: "the instant decided for" }),
    policyVersion: z.number().int().meta({ description: "the feed version the policy set was loaded at (or later)" }),
  })
  .meta({ id: "WhatIfDecision", description: "the decision an enforcement point would make, and for which device" });
export type WhatIfDecision = z.output<typeof whatIfDecisionSchema>;

export const evaluateWhatIf = verb(whatIfInput, async (ports, ctx, input): Promise<WhatIfDecision> => {
  // Read afresh, as the API's other reads are: a cached alias may name a device revoked through another instance, its
  // SIM registered again since (review 110).
  const deviceId = await resolveDevice(ports, ctx.tenantId, input.device, true);
  if (!deviceId) throw new SimrootError("device.not_found", "not_found", "No device in this tenant has that identifier");
  const [device, set] = await Promise.all([getDevice(ports, ctx, { id: deviceId }), loadPolicySet(ports, ctx.tenantId)]);
  // A grant revoked ends, at the latest, when its revocation is compiled, by the clock `at` is read from (compile.ts).
  const now = ports.now().getTime();
  const engine = compilePolicy(set, now);
  const at = input.at === undefined ? now : Date.parse(input.at);
  const decision = engine.decide({
    device: { id: device.id, state: device.state, labels: device.labels },
    destination: input.destination,
    port: input.port,
    protocol: input.protocol,
    bearer: input.bearer ?? ("unknown" as Bearer),
    country: input.country,
    at,
    principal: input.principal,
  });
  return { ...decision, deviceId: device.id, deviceState: device.state, at: new Date(at).toISOString(), policyVersion: set.version };
});
