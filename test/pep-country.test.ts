/**
 * Review 117: a country condition at the edge. The control plane knows which country a device is in (the PLMN of its
 * session, its roaming state) and decides with it (policy preview, the IoT authorizer, what-if); the PEP is never told,
 * so what it decides for the same device and connection differs.
 */
import { createPublicKey } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCheck } from "@simroot/pep/daemon/authz";
import { PepEngine } from "@simroot/pep/engine";
import { PepState } from "@simroot/pep/state";
import { FeedSync } from "@simroot/pep/sync";
import { call, coreFact, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(async () => {
  await runtime.stop();
});

const imsi = "208011234567890";
const meterIp = "10.20.0.7";
const mgmt = { fqdn: "mgmt.example.com", ports: [443], protocol: "tcp" };

type Tenant = Awaited<ReturnType<typeof tenantClient>>;

/** The control plane's own decision (what-if) for the device's connection to management from `country`. */
const whatIf = async (tenant: Tenant, country: string) =>
  (
    await tenant.call("POST", "/v1/decisions/evaluate", {
      device: { imsi },
      destination: { fqdn: "mgmt.example.com" },
      port: 443,
      protocol: "tcp",
      bearer: "cellular",
      country,
    })
  ).json;

/** A PEP on the tenant's whole feed, after its snapshot, and Envoy's ext_authz check of the meter's connection to management. */
async function edge(tenant: Tenant) {
  const pepKey = (await tenant.call("POST", "/v1/keys", { name: "edge-1", role: "pep" })).json.token as string;
  const feedKey = (await call(runtime, pepKey, "GET", "/v1/feed/keys")).json.keys[0].publicKeyPem as string;
  const state = new PepState(tenant.tenant.id);
  const sync = new FeedSync({
    url: "https://api.simroot.example",
    apiKey: pepKey,
    publicKeys: [createPublicKey(feedKey)],
    state,
    waitSeconds: 0,
    fetch: async (input, init) => runtime.app.request(String(input), init),
  });
  expect(await sync.step()).toBe("snapshot");
  const check = parseCheck({ host: "mgmt.example.com:443", "x-forwarded-for": meterIp });
  if (!check.ok) throw new Error("the check does not parse");
  const engine = new PepEngine(state);
  return { pepKey, state, sync, decide: () => engine.decide(check.request) };
}

describe("country conditions at the PEP (review 117)", () => {
  it("denies at the edge what a country deny rule denies for a device the control plane knows is in that country", async () => {
    const tenant = await tenantClient(runtime);
    const device = (await tenant.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters" } })).json;
    expect(
      (
        await tenant.call("POST", "/v1/policies", {
          name: "Meters reach management",
          selector: { matchLabels: { fleet: "meters" } },
          destinations: [mgmt],
          effect: "allow",
        })
      ).status,
    ).toBe(201);
    const block = await tenant.call("POST", "/v1/policies", {
      name: "No management from the US",
      selector: { matchLabels: { fleet: "meters" } },
      destinations: [mgmt],
      conditions: { countries: ["US"] },
      effect: "deny",
    });
    expect(block.status).toBe(201);

    // The operator core reports the device attached on a US network (MCC 310), roaming there, with its address in the APN.
    const post = await simrootSource(runtime, tenant);
    const at = new Date().toISOString();
    await post(
      coreFact("sim.attached", imsi, { bearer: "cellular", apn: "iot.acme", ipv4: meterIp, plmn: { mcc: "310", mnc: "260" } }, at, "a1"),
      coreFact("device.roaming-changed", imsi, { roaming: true, mcc: "310", country: "US" }, at, "r1"),
    );
    const known = (await tenant.call("GET", `/v1/devices/${device.id}`)).json;
    expect(known.identity.sessions.cellular).toMatchObject({ country: "US", ipv4: meterIp });
    expect(known.identity.roaming).toMatchObject({ roaming: true, country: "US" });

    // The control plane's own engine, for this device in the country it is in: denied by the deny rule.
    expect(await whatIf(tenant, known.identity.sessions.cellular.country)).toMatchObject({
      allow: false,
      reason: "deny.rule",
      ruleId: block.json.id,
    });

    // A PEP on the tenant's feed, asked by Envoy's ext_authz check for the same connection.
    const { pepKey, state, decide } = await edge(tenant);
    expect(state.binding(meterIp)?.deviceId).toBe(device.id);

    // The policy preview re-decides the PEP's reported flow with the device's session country: it says the connection
    // is denied now (removing the deny rule would newly allow it).
    const reported = await call(runtime, pepKey, "POST", "/v1/flows", {
      pepId: "edge-1",
      windowStart: new Date(Date.now() - 60_000).toISOString(),
      windowEnd: new Date().toISOString(),
      flows: [
        {
          deviceId: device.id,
          destination: "mgmt.example.com",
          port: 443,
          protocol: "tcp",
          decision: "allow",
          reason: "allow.rule",
          count: 1,
          bytes: 0,
        },
      ],
    });
    expect(reported.status).toBeLessThan(300);
    await runtime.settled();
    const preview = await tenant.call("POST", "/v1/policies/preview", { remove: block.json.id });
    expect(preview.json.newlyAllowed).toEqual([
      expect.objectContaining({
        deviceId: device.id,
        destination: "mgmt.example.com",
        before: expect.objectContaining({ reason: "deny.rule" }),
      }),
    ]);

    // The edge must agree with the control plane: this device is in the US.
    expect(decide()).toMatchObject({ allow: false, reason: "deny.rule", ruleId: block.json.id });
  });

  it("allows at the edge what a country allow rule allows for a device the control plane knows is in that country", async () => {
    const tenant = await tenantClient(runtime, "globex");
    const device = (await tenant.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters" } })).json;
    const allow = await tenant.call("POST", "/v1/policies", {
      name: "Meters reach management from France",
      selector: { matchLabels: { fleet: "meters" } },
      destinations: [mgmt],
      conditions: { countries: ["FR"] },
      effect: "allow",
    });
    expect(allow.status).toBe(201);
    // Attached at home, on a French network (MCC 208).
    const post = await simrootSource(runtime, tenant);
    await post(
      coreFact(
        "sim.attached",
        imsi,
        { bearer: "cellular", apn: "iot.acme", ipv4: meterIp, plmn: { mcc: "208", mnc: "01" } },
        new Date().toISOString(),
        "a1",
      ),
    );
    const known = (await tenant.call("GET", `/v1/devices/${device.id}`)).json;
    expect(known.identity.sessions.cellular).toMatchObject({ country: "FR", ipv4: meterIp });
    expect(await whatIf(tenant, known.identity.sessions.cellular.country)).toMatchObject({
      allow: true,
      reason: "allow.rule",
      ruleId: allow.json.id,
    });
    const { state, sync, decide } = await edge(tenant);
    expect(state.binding(meterIp)?.deviceId).toBe(device.id);
    expect(decide()).toMatchObject({ allow: true, reason: "allow.rule", ruleId: allow.json.id });

    // Later the core reports the device roaming in the US, on the same session: the PEP learns it from the next delta.
    await post(
      coreFact(
        "device.roaming-changed",
        imsi,
        { roaming: true, mcc: "310", country: "US" },
        new Date(Date.now() + 1000).toISOString(),
        "r1",
      ),
    );
    expect(await sync.step()).toBe("delta");
    expect(state.binding(meterIp)).toMatchObject({ deviceId: device.id, country: "US" });
    expect(decide()).toMatchObject({ allow: false, reason: "deny.default" });
  });
});
