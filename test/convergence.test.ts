import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const imsi = "208011234567890";
const eid = "89049032123451234512345678901235";
const minute = (n: number) => new Date(Date.UTC(2026, 10, 22, 7, n)).toISOString();

const bearerArb = fc.constantFrom("cellular", "wifi", "satellite");
const ipArb = fc.constantFrom("10.9.0.1", "10.9.0.2");
const timeFactArb = fc.oneof(
  fc.record({ type: fc.constant("sim.attached"), data: fc.record({ bearer: bearerArb, ipv4: ipArb }) }),
  fc.record({ type: fc.constant("sim.detached"), data: fc.record({ bearer: bearerArb }, { requiredKeys: [] }) }),
  fc.record({ type: fc.constant("bearer.switched"), data: fc.record({ bearer: bearerArb, ipv4: ipArb }) }),
  fc.record({
    type: fc.constant("device.roaming-changed"),
    data: fc.record({ roaming: fc.boolean(), mcc: fc.constantFrom("208", "262") }),
  }),
  fc.record({
    type: fc.constant("device.equipment-changed"),
    data: fc.record({ imei: fc.constantFrom("490154203237518", "356938035643809") }),
  }),
  fc.record({ type: fc.constantFrom("device.suspended", "device.reinstated", "device.revoked"), data: fc.constant({}) }),
);
const profileFactArb = fc.record({
  type: fc.constantFrom("profile.installed", "profile.enabled", "profile.disabled", "profile.deleted"),
  iccid: fc.constantFrom("8944500102198304826", "8944500102198304834"),
});

/** A device's history: normalized facts in the order they happened. */
const historyArb = fc
  .tuple(fc.array(timeFactArb, { minLength: 1, maxLength: 10 }), fc.array(profileFactArb, { maxLength: 5 }))
  .map(([timeFacts, profileFacts]) => [
    ...timeFacts.map((spec, n) => ({ ...spec, dedupeKey: `t${n}`, occurredAt: minute(n), device: { imsi }, sourceType: spec.type })),
    ...profileFacts.map((spec, n) => ({
      type: spec.type,
      dedupeKey: `p${n}`,
      occurredAt: minute(30 + n),
      sequence: n + 1,
      device: { eid },
      sourceType: spec.type,
      data: { eid, iccid: spec.iccid, seqNumber: n + 1, ...(spec.type === "profile.installed" ? { result: "success" } : {}) },
    })),
  ]);

/** An identity with its holds' source ids named alike: each history is delivered by a source of its own tenant. */
function sourcesNamedAlike(identity: { holds?: { sources?: Record<string, unknown> } }) {
  const sources = identity.holds?.sources;
  if (!sources) return identity;
  return {
    ...identity,
    holds: { ...identity.holds, sources: Object.fromEntries(Object.values(sources).map((hold, n) => [`source ${n}`, hold])) },
  };
}

/** A fresh tenant with a device and a simroot-format source; `deliver` posts signed batches. */
async function tenantWithDevice() {
  const tenant = await tenantClient(runtime);
  const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "feed", format: "simroot" })).json;
  const device = (await tenant.call("POST", "/v1/devices", { imsi, eid, imei: "490154203237518" })).json;
  const deliver = async (batch: unknown[]) => {
    const body = JSON.stringify(batch);
    const response = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: standardWebhookHeaders(credentials.webhookSecret, body),
      body,
    });
    expect(response.status).toBe(202);
  };
  /** The device's identity state; the registration time, which differs between tenants, is left out. */
  const identity = async () => {
    const current = (await tenant.call("GET", `/v1/devices/${device.id}`)).json;
    const { stateAt, ...rest } = current.identity;
    return { state: current.state, identity: stateAt === current.createdAt ? rest : { ...rest, stateAt } };
  };
  return { deliver, identity };
}

describe("convergence through the whole pipeline (property)", () => {
  it("any shuffled, duplicated, concurrently delivered history ends in the in-order state", { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        historyArb.chain((facts) =>
          fc.tuple(
            fc.constant(facts),
            fc
              .shuffledSubarray(facts)
              .chain((repeats) => fc.shuffledSubarray([...facts, ...repeats], { minLength: facts.length + repeats.length })),
            fc.integer({ min: 1, max: 4 }),
          ),
        ),
        async ([inOrder, scrambled, batchSize]) => {
          const ordered = await tenantWithDevice();
          for (const fact of inOrder) {
            await ordered.deliver([fact]);
            await runtime.settled();
          }
          const disordered = await tenantWithDevice();
          const batches = [];
          for (let start = 0; start < scrambled.length; start += batchSize) batches.push(scrambled.slice(start, start + batchSize));
          await Promise.all(batches.map((batch) => disordered.deliver(batch)));
          await runtime.settled();

          const expected = await ordered.identity();
          const actual = await disordered.identity();
          expect(actual.state).toBe(expected.state);
          expect(sourcesNamedAlike(actual.identity)).toEqual(sourcesNamedAlike(expected.identity));
        },
      ),
      { numRuns: 15 },
    );
  });
});
