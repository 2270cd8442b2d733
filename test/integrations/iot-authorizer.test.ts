/**
 * The AWS IoT Core custom authorizer, with IoT's documented request and response shapes: a
 * device proves itself with its IoT SAFE key (the one registered as its credential), and
 * simroot's state and policy decide whether it connects and which topics it may use.
 */
import { generateKeyPairSync } from "node:crypto";
import type { IoTCustomAuthorizerEvent, IoTCustomAuthorizerResult } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authorizeMqtt } from "@simroot/core";
import { coreFact, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "../support/runtime.ts";
import { mqttConnect, mqttPassword } from "../support/mqtt-connect.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const host = "a1b2c3-ats.iot.eu-west-1.amazonaws.com";
const keyPair = () => generateKeyPairSync("ec", { namedCurve: "P-256" });

const password = mqttPassword;
const connect = (clientId: string, password: string) => mqttConnect(host, clientId, password);

async function fleet(labels: Record<string, string> = { fleet: "meters" }) {
  const acme = await tenantClient(runtime);
  const policy = {
    name: "Meters reach IoT Core",
    selector: { matchLabels: { fleet: "meters" } },
    destinations: [{ fqdn: host, ports: [8883], protocol: "tcp" }],
    effect: "allow",
  };
  expect((await acme.call("POST", "/v1/policies", policy)).status).toBe(201);
  const { privateKey, publicKey } = keyPair();
  const credential = publicKey.export({ type: "spki", format: "pem" }).toString();
  const device = (await acme.call("POST", "/v1/devices", { imsi: "208011234567890", labels, credential })).json;
  const authorize = (event: IoTCustomAuthorizerEvent) =>
    authorizeMqtt(runtime.ports, { tenantId: acme.tenant.id, mqttHost: host }, event) as Promise<IoTCustomAuthorizerResult>;
  return { acme, device, privateKey, publicKey, authorize };
}

describe("the AWS IoT Core custom authorizer", () => {
  it("lets an active device connect with its IoT SAFE key, to its own topics and its label topics", async () => {
    const { device, privateKey, publicKey, authorize } = await fleet({ fleet: "meters", site: "lyon" });
    const response = await authorize(connect(device.id, password(device.id, privateKey, publicKey)));
    expect(response).toMatchObject({
      isAuthenticated: true,
      principalId: device.id.replace("_", ""),
      refreshAfterInSeconds: 300,
      disconnectAfterInSeconds: 3600,
    });
    expect(response.principalId).toMatch(/^[a-zA-Z0-9]{1,128}$/);
    const statements = response.policyDocuments[0]!.Statement;
    expect(statements).toContainEqual({ Effect: "Allow", Action: "iot:Connect", Resource: `arn:aws:iot:*:*:client/${device.id}` });
    expect(statements).toContainEqual({ Effect: "Allow", Action: "iot:Publish", Resource: `arn:aws:iot:*:*:topic/devices/${device.id}/*` });
    expect(JSON.stringify(statements)).toContain("topicfilter/labels/site/lyon/*");
  });

  it("keeps a connection through IoT's refreshes, asked with its CONNECT's password, and no other connection (review 160)", async () => {
    // IoT Core asks the authorizer again every refreshAfterInSeconds (300) with the connection's original CONNECT: its
    // password was then more than 300 s old, refused as stale, so every device was cut at its first refresh, long before
    // its 3,600 s, and the state check the refresh is for never ran on a connection that lived.
    const { acme, device, privateKey, publicKey } = await fleet();
    let clock = Date.now();
    const ports = { ...runtime.ports, now: () => new Date(clock) };
    const authorize = (event: IoTCustomAuthorizerEvent) =>
      authorizeMqtt(ports, { tenantId: acme.tenant.id, mqttHost: host }, event) as Promise<IoTCustomAuthorizerResult>;
    const connection = connect(device.id, password(device.id, privateKey, publicKey, Math.floor(clock / 1000)));
    expect((await authorize(connection)).isAuthenticated).toBe(true);

    clock += 301_000;
    expect((await authorize(connection)).isAuthenticated).toBe(true);
    clock += 3_000_000;
    expect((await authorize(connection)).isAuthenticated).toBe(true);
    // The same password on a new connection (a replay): stale, refused.
    expect((await authorize({ ...connection, connectionMetadata: { id: crypto.randomUUID() } })).isAuthenticated).toBe(false);
    // The connection's id with another password of the device, old too: refused (the id stands for the password it was given).
    const older = connect(device.id, password(device.id, privateKey, publicKey, Math.floor(clock / 1000) - 900));
    expect((await authorize({ ...older, connectionMetadata: connection.connectionMetadata })).isAuthenticated).toBe(false);

    // What the refresh is for: the device's state. Suspended, its connection is refused at the next refresh.
    expect((await acme.call("POST", `/v1/devices/${device.id}/suspend`, { reason: "lost" })).status).toBe(200);
    expect((await authorize(connection)).isAuthenticated).toBe(false);
  });

  it("refuses a password signed by another key, a stale one, and one for another client id", async () => {
    const { device, privateKey, publicKey, authorize } = await fleet();
    const other = keyPair();
    expect((await authorize(connect(device.id, password(device.id, other.privateKey, other.publicKey)))).isAuthenticated).toBe(false);
    // The right SPKI with a signature by another key.
    expect((await authorize(connect(device.id, password(device.id, other.privateKey, publicKey)))).isAuthenticated).toBe(false);
    const stale = Math.floor(Date.now() / 1000) - 600;
    expect((await authorize(connect(device.id, password(device.id, privateKey, publicKey, stale)))).isAuthenticated).toBe(false);
    expect((await authorize(connect("dev_01JD3Q4ZK8W9X2V5N6M7P8R9ST", password(device.id, privateKey, publicKey)))).isAuthenticated).toBe(
      false,
    );
    expect((await authorize(connect(device.id, ""))).isAuthenticated).toBe(false);
  });

  it("refuses revoked and suspended devices, and devices the tenant's policy does not let reach the endpoint", async () => {
    const { acme, device, privateKey, publicKey, authorize } = await fleet();
    // A pump with its own key: authenticated, but no rule lets pumps reach the endpoint (default deny).
    const pumpKey = keyPair();
    const pumpCredential = pumpKey.publicKey.export({ type: "spki", format: "pem" }).toString();
    const pump = (
      await acme.call("POST", "/v1/devices", { imsi: "208011234567891", labels: { fleet: "pumps" }, credential: pumpCredential })
    ).json;
    expect((await authorize(connect(pump.id, password(pump.id, pumpKey.privateKey, pumpKey.publicKey)))).isAuthenticated).toBe(false);
    await acme.call("POST", `/v1/devices/${device.id}/suspend`, { reason: "maintenance" });
    expect((await authorize(connect(device.id, password(device.id, privateKey, publicKey)))).isAuthenticated).toBe(false);
    await acme.call("POST", `/v1/devices/${device.id}/reinstate`, { reason: "done" });
    expect((await authorize(connect(device.id, password(device.id, privateKey, publicKey)))).isAuthenticated).toBe(true);
    await acme.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" });
    expect((await authorize(connect(device.id, password(device.id, privateKey, publicKey)))).isAuthenticated).toBe(false);
  });

  it("gives a quarantined device only its quarantine topics, when the endpoint is a quarantine destination", async () => {
    const { acme, device, privateKey, publicKey, authorize } = await fleet();
    await acme.call("POST", `/v1/devices/${device.id}/quarantine`, { reason: "IMEI changed" });
    expect((await authorize(connect(device.id, password(device.id, privateKey, publicKey)))).isAuthenticated).toBe(false);
    const settings = { quarantineDestinations: [{ fqdn: host, ports: [8883], protocol: "tcp" }], failMode: "closed" };
    expect((await acme.call("PUT", "/v1/enforcement", settings, { "if-match": '"0"' })).status).toBe(200);
    const response = await authorize(connect(device.id, password(device.id, privateKey, publicKey)));
    expect(response.isAuthenticated).toBe(true);
    expect(response.disconnectAfterInSeconds).toBe(300);
    const resources = response.policyDocuments.flatMap((document) =>
      document.Statement.flatMap((statement) => [(statement as { Resource: string | string[] }).Resource].flat()),
    );
    expect(
      resources
        .filter((resource) => !resource.includes(":client/"))
        .every((resource) => String(resource).includes(`/quarantine/${device.id}/`)),
    ).toBe(true);
  });

  it("decides with the bearers the device holds sessions on, and an unknown one without a session, as a PEP does (review 122)", async () => {
    // A rule that lets meters reach IoT Core over cellular only. The authorizer took the first session's bearer, or
    // cellular for a device with no session, and let a device never attached, or attached over Wi-Fi, connect.
    const acme = await tenantClient(runtime);
    const cellularOnly = {
      name: "Meters reach IoT Core over cellular only",
      selector: { matchLabels: { fleet: "meters" } },
      destinations: [{ fqdn: host, ports: [8883], protocol: "tcp" }],
      conditions: { bearers: ["cellular"] },
      effect: "allow",
    };
    expect((await acme.call("POST", "/v1/policies", cellularOnly)).status).toBe(201);
    const { privateKey, publicKey } = keyPair();
    const credential = publicKey.export({ type: "spki", format: "pem" }).toString();
    const imsi = "208011234567891";
    const device = (await acme.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters" }, credential })).json;
    const report = await simrootSource(runtime, acme);
    const authorized = async () =>
      (
        (await authorizeMqtt(
          runtime.ports,
          { tenantId: acme.tenant.id, mqttHost: host },
          connect(device.id, password(device.id, privateKey, publicKey)),
        )) as IoTCustomAuthorizerResult
      ).isAuthenticated;
    const at = (minutes: number) => new Date(Date.now() - 60 * 60_000 + minutes * 60_000).toISOString();
    // Never attached: no bearer is known.
    expect(await authorized()).toBe(false);
    await report(coreFact("sim.attached", imsi, { bearer: "wifi", ipv4: "192.168.7.20" }, at(1), "iot-bearer-1"));
    expect(await authorized()).toBe(false);
    await report(coreFact("sim.attached", imsi, { bearer: "cellular", ipv4: "10.77.0.20" }, at(2), "iot-bearer-2"));
    // Over either bearer: IoT Core does not say which, so each must allow.
    expect(await authorized()).toBe(false);
    await report(coreFact("sim.detached", imsi, { bearer: "wifi" }, at(3), "iot-bearer-3"));
    expect(await authorized()).toBe(true);
  });

  it("never turns a label value into a topic wildcard", async () => {
    const { device, privateKey, publicKey, authorize } = await fleet({ fleet: "meters", zone: "*", area: "#" });
    const response = await authorize(connect(device.id, password(device.id, privateKey, publicKey)));
    expect(response.isAuthenticated).toBe(true);
    const resources = response.policyDocuments.flatMap((document) =>
      document.Statement.flatMap((statement) => [(statement as { Resource: string | string[] }).Resource].flat()),
    );
    expect(resources.some((resource) => /labels\/(zone|area)\//.test(String(resource)))).toBe(false);
    expect(
      resources
        .filter((resource) => String(resource).includes("/labels/"))
        .every((resource) => String(resource).endsWith("/labels/fleet/meters/*")),
    ).toBe(true);
  });
});
