/**
 * Review 117: a country condition at the edge. The control plane knows which country a device is in (the PLMN of its
 * session, its roaming state) and decides with it (policy preview, the IoT authorizer, what-if); the PEP was never told,
 * so what it decided for the same device and connection differed. Review 120: a roaming report made before a session
 * that named no network, and a roaming report of a device whose stale session names an address another device holds.
 */
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import type { IoTCustomAuthorizerResult } from "aws-lambda";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authorizeMqtt } from "@simroot/core";
import { bindingKey } from "@simroot/core/device/keys";
import { parseCheck } from "@simroot/pep/daemon/authz";
import { PepEngine } from "@simroot/pep/engine";
import { PepState } from "@simroot/pep/state";
import { FeedSync } from "@simroot/pep/sync";
import { call, coreFact, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { mqttConnect, mqttPassword } from "./support/mqtt-connect.ts";

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
    const { deny } = await policies(tenant);

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
      ruleId: deny,
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
    const preview = await tenant.call("POST", "/v1/policies/preview", { remove: deny });
    expect(preview.json.newlyAllowed).toEqual([
      expect.objectContaining({
        deviceId: device.id,
        destination: "mgmt.example.com",
        before: expect.objectContaining({ reason: "deny.rule" }),
      }),
    ]);

    // The edge must agree with the control plane: this device is in the US.
    expect(decide()).toMatchObject({ allow: false, reason: "deny.rule", ruleId: deny });
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

/** An allow rule to management for the meters, and a deny rule for management from the US. */
async function policies(tenant: Tenant, destination = mgmt) {
  const allow = await tenant.call("POST", "/v1/policies", {
    name: "Meters reach management",
    selector: { matchLabels: { fleet: "meters" } },
    destinations: [destination],
    effect: "allow",
  });
  expect(allow.status).toBe(201);
  const deny = await tenant.call("POST", "/v1/policies", {
    name: "No management from the US",
    selector: { matchLabels: { fleet: "meters" } },
    destinations: [destination],
    conditions: { countries: ["US"] },
    effect: "deny",
  });
  expect(deny.status).toBe(201);
  return { deny: deny.json.id as string };
}

describe("a session reported without its PLMN after the roaming report that says where the device is (review 120)", () => {
  it("is decided at the PEP with the country the control plane knows the device roams in", async () => {
    const imsi = "208011234560120";
    const tenant = await tenantClient(runtime, "roam-before-session");
    const device = (await tenant.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters" } })).json;
    const { deny } = await policies(tenant);
    const post = await simrootSource(runtime, tenant);
    // Update Location on a US network (the roaming report), then the data session it opens there, reported without a PLMN.
    const located = new Date(Date.now() - 2_000).toISOString();
    const attached = new Date(Date.now() - 1_000).toISOString();
    await post(
      coreFact("device.roaming-changed", imsi, { roaming: true, mcc: "310", country: "US" }, located, "r1"),
      coreFact("sim.attached", imsi, { bearer: "cellular", apn: "iot.acme", ipv4: meterIp }, attached, "a1"),
    );
    const known = (await tenant.call("GET", `/v1/devices/${device.id}`)).json;
    expect(known.identity.roaming).toMatchObject({ roaming: true, country: "US" });
    expect(known.identity.sessions.cellular).toMatchObject({ ipv4: meterIp });

    const { state, decide } = await edge(tenant);
    expect(state.binding(meterIp)?.deviceId).toBe(device.id);
    // The device is roaming in the US, and nothing reported since says otherwise: the deny rule holds at the edge.
    expect(state.binding(meterIp)?.country).toBe("US");
    expect(decide()).toMatchObject({ allow: false, reason: "deny.rule", ruleId: deny });
  });

  it("is refused by the IoT authorizer as before 2a90930, which took the roaming report's country", async () => {
    const imsi = "208011234560121";
    const host = "a1b2c3-ats.iot.eu-west-1.amazonaws.com";
    const tenant = await tenantClient(runtime, "roam-before-session-iot");
    await policies(tenant, { fqdn: host, ports: [8883], protocol: "tcp" });
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const credential = publicKey.export({ type: "spki", format: "pem" }).toString();
    const device = (await tenant.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters" }, credential })).json;
    const post = await simrootSource(runtime, tenant);
    await post(
      coreFact(
        "device.roaming-changed",
        imsi,
        { roaming: true, mcc: "310", country: "US" },
        new Date(Date.now() - 2_000).toISOString(),
        "r1",
      ),
      coreFact(
        "sim.attached",
        imsi,
        { bearer: "cellular", apn: "iot.acme", ipv4: meterIp },
        new Date(Date.now() - 1_000).toISOString(),
        "a1",
      ),
    );
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.roaming).toMatchObject({ country: "US" });
    const response = (await authorizeMqtt(
      runtime.ports,
      { tenantId: tenant.tenant.id, mqttHost: host },
      mqttConnect(host, device.id, mqttPassword(device.id, privateKey, publicKey)),
    )) as IoTCustomAuthorizerResult;
    // Roaming in the US: "No management from the US" denies the connection (it did before 2a90930).
    expect(response.isAuthenticated).toBe(false);
  });
});

describe("a roaming report of a device whose session still names an address another device took (review 120)", () => {
  // Before 2a90930 a roaming report wrote no binding. Now a country change rewrites every binding the device's state
  // names, through `bindingChanges`, whose guard against a late session taking an address (review 95, `sessionAt`)
  // lets a binding written before that rule (no `sessionAt`) be taken.
  it("leaves the address to the device that holds it", async () => {
    const tenant = await tenantClient(runtime, "roaming-takes-address");
    expect((await tenant.call("POST", "/v1/devices", { imsi: "208011234560124", labels: { fleet: "meters" } })).status).toBe(201);
    const b = (await tenant.call("POST", "/v1/devices", { imsi: "208011234560125", labels: { fleet: "meters" } })).json;
    const post = await simrootSource(runtime, tenant);
    const home = { bearer: "cellular", apn: "iot.acme", ipv4: meterIp, plmn: { mcc: "208", mnc: "01" } };
    // A's session on the address; its detach never arrives. Later B is given the address.
    await post(coreFact("sim.attached", "208011234560124", home, new Date(Date.now() - 120_000).toISOString(), "a1"));
    await post(coreFact("sim.attached", "208011234560125", home, new Date(Date.now() - 60_000).toISOString(), "b1"));
    expect((await tenant.call("GET", `/v1/devices/lookup?ip=${meterIp}`)).json.id).toBe(b.id);
    // B's binding as written before the sessionAt rule (review 95).
    await runtime.ports.db.send(
      new UpdateCommand({
        TableName: runtime.ports.tables.identity,
        Key: bindingKey(tenant.tenant.id, meterIp),
        UpdateExpression: "REMOVE sessionAt",
        ConditionExpression: "deviceId = :b",
        ExpressionAttributeValues: { ":b": b.id },
      }),
    );
    // A roaming report about A: its stale session's country changes.
    await post(
      coreFact("device.roaming-changed", "208011234560124", { roaming: true, mcc: "310", country: "US" }, new Date().toISOString(), "r1"),
    );
    expect((await tenant.call("GET", `/v1/devices/lookup?ip=${meterIp}`)).json.id).toBe(b.id);
  });
});
