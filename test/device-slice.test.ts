import { createHash, generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { auditPartition, shardCount, shardOfSubject } from "@simroot/core";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

const meter = {
  name: "meter-1",
  eid: "89049032123451234512345678901235",
  iccids: ["8944500102198304826"],
  imsi: "234100000000001",
  imei: "490154203237518",
  labels: { fleet: "meters" },
};

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

async function auditCount(tenantId: string) {
  // Every ledger shard's chain of the tenant.
  const results = await Promise.all(
    Array.from({ length: shardCount }, (_, shard) =>
      runtime.ports.db.send(
        new QueryCommand({
          TableName: runtime.ports.tables.audit,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": auditPartition(tenantId, shard) },
        }),
      ),
    ),
  );
  // Not counting the tenant's creation, its first record.
  return results.reduce((sum, result) => sum + (result.Items?.length ?? 0), 0) - 1;
}

describe("the first vertical slice: register a device", () => {
  it("registers, audits, publishes device.registered, and the timeline shows it", async () => {
    const acme = await tenantClient(runtime);
    const created = await acme.call("POST", "/v1/devices", meter);
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ ...meter, state: "active", tenantId: acme.tenant.id, revision: 1 });
    expect(created.json.id).toMatch(/^dev_/);
    expect(created.headers.get("location")).toBe(`/v1/devices/${created.json.id}`);
    expect(created.headers.get("etag")).toBe('"1"');
    expect(created.headers.get("x-request-id")).toMatch(/^req_/);

    const fetched = await acme.call("GET", `/v1/devices/${created.json.id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.json).toEqual(created.json);
    expect(await auditCount(acme.tenant.id)).toBe(1);

    const timeline = await acme.call("GET", `/v1/devices/${created.json.id}/timeline`);
    expect(timeline.status).toBe(200);
    expect(timeline.json.items).toHaveLength(1);
    // Its position in its ledger shard's chain: after the tenant's creation when both are on shard 0.
    expect(timeline.json.items[0]).toMatchObject({
      seq: shardOfSubject(created.json.id) === 0 ? 2 : 1,
      type: "device.registered",
      actor: `key:${acme.keyId}`,
      data: { device: { id: created.json.id } },
    });
  });

  it("rejects bad input with problem+json naming the fields, and changes nothing", async () => {
    const acme = await tenantClient(runtime);
    const bad = await acme.call("POST", "/v1/devices", { eid: "123", imei: "490154203237519", labels: { Bad: "x" } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toContain("application/problem+json");
    expect(bad.json).toMatchObject({ type: "urn:simroot:problem:request.invalid", status: 400 });
    expect(bad.json.errors.map((issue: { path: string }) => issue.path).sort()).toEqual(["eid", "imei", "labels.Bad"]);

    const malformed = await acme.call("POST", "/v1/devices", "{not json");
    expect(malformed.status).toBe(400);
    expect(malformed.json.type).toBe("urn:simroot:problem:request.malformed");

    const unknownField = await acme.call("POST", "/v1/devices", { ...meter, colour: "red" });
    expect(unknownField.status).toBe(400);

    const list = await acme.call("GET", "/v1/devices");
    expect(list.json.items).toEqual([]);
    expect(await auditCount(acme.tenant.id)).toBe(0);
  });

  it("keeps every identifier unique in a tenant and writes nothing of a refused device", async () => {
    const acme = await tenantClient(runtime);
    expect((await acme.call("POST", "/v1/devices", meter)).status).toBe(201);
    const clash = await acme.call("POST", "/v1/devices", { imsi: meter.imsi, iccids: ["8944500102198304827"] });
    expect(clash.status).toBe(409);
    expect(clash.json).toMatchObject({ type: "urn:simroot:problem:device.identifier_taken", errors: [{ path: "imsi" }] });

    // The refused device's other identifier was not claimed: it can be registered now.
    expect((await acme.call("POST", "/v1/devices", { iccids: ["8944500102198304827"] })).status).toBe(201);
    expect((await acme.call("GET", "/v1/devices")).json.items).toHaveLength(2);
    expect(await auditCount(acme.tenant.id)).toBe(2);
  });

  it("keeps an IoT SAFE credential as its SPKI SHA-256 fingerprint and finds the device by it", async () => {
    const acme = await tenantClient(runtime);
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    const fingerprint = createHash("sha256")
      .update(publicKey.export({ type: "spki", format: "der" }))
      .digest("hex");
    const created = await acme.call("POST", "/v1/devices", { imsi: "234100000000077", credential: pem });
    expect(created.status).toBe(201);
    expect(created.json.credentialFingerprint).toBe(fingerprint);
    expect(created.text).not.toContain("BEGIN PUBLIC KEY");
    expect((await acme.call("GET", `/v1/devices/lookup?credential=${fingerprint}`)).json.id).toBe(created.json.id);
    const bad = await acme.call("POST", "/v1/devices", {
      imsi: "234100000000078",
      credential: "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----",
    });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].path).toBe("credential");
    const reused = await acme.call("POST", "/v1/devices", { imsi: "234100000000079", credential: pem });
    expect(reused.status).toBe(409);
    expect(reused.json.errors[0].path).toBe("credential");
  });

  it("finds a device by the IMSI inside its Wi-Fi NAI or 5G SUPI", async () => {
    const acme = await tenantClient(runtime);
    const created = await acme.call("POST", "/v1/devices", { imsi: "208011234567890" });
    const nai = encodeURIComponent("0208011234567890@wlan.mnc001.mcc208.3gppnetwork.org");
    expect((await acme.call("GET", `/v1/devices/lookup?nai=${nai}`)).json.id).toBe(created.json.id);
    expect((await acme.call("GET", "/v1/devices/lookup?supi=imsi-208011234567890")).json.id).toBe(created.json.id);
    expect(
      (await acme.call("GET", `/v1/devices/lookup?nai=${encodeURIComponent("2pseudonym@wlan.mnc001.mcc208.3gppnetwork.org")}`)).status,
    ).toBe(404);
  });

  it("scopes devices to the tenant of the key", async () => {
    const acme = await tenantClient(runtime, "acme");
    const globex = await tenantClient(runtime, "globex");
    const device = (await acme.call("POST", "/v1/devices", meter)).json;

    expect((await globex.call("GET", `/v1/devices/${device.id}`)).status).toBe(404);
    expect((await globex.call("GET", `/v1/devices/${device.id}/timeline`)).status).toBe(404);
    expect((await globex.call("GET", "/v1/devices")).json.items).toEqual([]);
    // The same SIM may be registered in another tenant: uniqueness is per tenant.
    expect((await globex.call("POST", "/v1/devices", meter)).status).toBe(201);
  });

  it("pages through devices with an opaque cursor that cannot cross tenants", async () => {
    const acme = await tenantClient(runtime);
    const globex = await tenantClient(runtime, "globex");
    const imsis = ["234100000000011", "234100000000012", "234100000000013"];
    for (const imsi of imsis) await acme.call("POST", "/v1/devices", { imsi });

    const first = await acme.call("GET", "/v1/devices?limit=2");
    expect(first.json.items.map((d: { imsi: string }) => d.imsi)).toEqual(imsis.slice(0, 2));
    const second = await acme.call("GET", `/v1/devices?limit=2&cursor=${first.json.next}`);
    expect(second.json.items.map((d: { imsi: string }) => d.imsi)).toEqual(imsis.slice(2));
    expect(second.json.next).toBeUndefined();

    const stolen = await globex.call("GET", `/v1/devices?limit=2&cursor=${first.json.next}`);
    expect(stolen.status).toBe(400);
    expect(stolen.json.type).toBe("urn:simroot:problem:request.invalid_cursor");
  });

  it("refuses requests without a valid key", async () => {
    const none = await call(runtime, undefined, "GET", "/v1/devices");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    const forged = await call(runtime, `sr_key_01M80TFHWKZH8T8FK3SZZXB2T1_${"A".repeat(43)}`, "GET", "/v1/devices");
    expect(forged.status).toBe(401);
    expect(forged.json.type).toBe("urn:simroot:problem:auth.invalid_key");
  });

  it("reports store and bus health, and serves the OpenAPI document", async () => {
    const health = await call(runtime, undefined, "GET", "/health");
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: "ok", components: { store: { status: "ok" }, bus: { status: "ok" } } });
    const openapi = await call(runtime, undefined, "GET", "/openapi.json");
    expect(openapi.json.openapi).toBe("3.1.0");
    expect(Object.keys(openapi.json.paths)).toEqual(expect.arrayContaining(["/v1/devices", "/v1/devices/{id}", "/health"]));
  });

  it("answers unknown routes with problem+json 404", async () => {
    const missing = await call(runtime, undefined, "GET", "/v1/nothing-here");
    expect(missing.status).toBe(404);
    expect(missing.json.type).toBe("urn:simroot:problem:route.not_found");
  });
});
