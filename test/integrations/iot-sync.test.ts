/**
 * simroot's events reach AWS IoT Core: the real @aws-sdk/client-iot (SigV4, REST JSON) against
 * a loopback server speaking IoT's control-plane API, over the real store (DynamoDB Local).
 */
import { IoTClient } from "@aws-sdk/client-iot";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { documentClient, portsFor, syncDeviceToIot, type DomainEvent } from "@simroot/core";
import type { IotControl } from "../../packages/core/src/integration/iot/iot-port.ts";
import { sdkIotControl } from "../../packages/core/src/integration/iot/iot-sdk.ts";
import { startIotLoopback, type IotLoopback } from "../../packages/core/src/integration/iot/iot-loopback.test-support.ts";
import { committedEvents } from "../support/audit-events.ts";
import { failDeliveryRecords } from "../support/store-faults.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "../support/runtime.ts";

let runtime: TestRuntime;
let iot: IotLoopback;
beforeAll(async () => {
  [runtime, iot] = await Promise.all([startTestRuntime(), startIotLoopback()]);
});
afterAll(async () => {
  await Promise.all([runtime.stop(), iot.close()]);
});

const client = () =>
  new IoTClient({ endpoint: iot.endpoint, region: "eu-west-1", credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" } });

const meter = {
  name: "meter-1",
  eid: "89049032123451234512345678901235",
  iccids: ["8944500102198304826"],
  imei: "490154203237518",
  labels: { fleet: "meters", site: "Lyon Nord" },
};

async function setUp() {
  const acme = await tenantClient(runtime);
  const settings = { tenantId: acme.tenant.id, prefix: "simroot-" };
  const control = sdkIotControl(client());
  const seen = new Set<string>();
  /** Delivers every event committed since the last call, as the consumer would. */
  const deliver = async (events?: DomainEvent[]) => {
    const fresh = events ?? (await committedEvents(runtime, acme.tenant.id, seen));
    const actions = [];
    for (const event of fresh) actions.push(...(await syncDeviceToIot(runtime.ports, control, settings, event)));
    return { events: fresh, actions };
  };
  return { acme, settings, control, deliver };
}

describe("the AWS IoT Core integration", () => {
  it("registers a thing with the SIM attributes in its state's group, signed with SigV4", async () => {
    const { acme, deliver } = await setUp();
    const created = await acme.call("POST", "/v1/devices", meter);
    const id = created.json.id as string;
    const { actions } = await deliver();
    expect(actions).toEqual(["setup", "thing.created", "group.active"]);
    const thing = iot.things.get(id)!;
    expect(thing.thingTypeName).toBe("simroot-sim");
    expect(thing.attributes).toEqual({
      "simroot.device": id,
      "simroot.tenant": acme.tenant.id,
      "simroot.state": "active",
      "sim.eid": meter.eid,
      "sim.iccid": meter.iccids[0],
      "sim.imei": meter.imei,
      "label.fleet": "meters",
      // A space is outside IoT's attribute charset: carried reversibly encoded.
      "label.site": `b64:${Buffer.from("Lyon Nord").toString("base64url")}`,
    });
    expect([...thing.groups]).toEqual(["simroot-active"]);
    expect(iot.requests.at(-1)!.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/iot\/aws4_request/);
  });

  it("quarantine moves the thing to the quarantine group, whose policy denies all but the quarantine topics; reinstate moves it back", async () => {
    const { acme, deliver } = await setUp();
    const id = (await acme.call("POST", "/v1/devices", meter)).json.id as string;
    await deliver();
    const before = iot.requests.length;
    expect((await acme.call("POST", `/v1/devices/${id}/quarantine`, { reason: "IMEI changed" })).status).toBe(200);
    const quarantined = await deliver();
    // The quarantine group is made whole (created, its policy attached) before the thing enters it, not on a miss.
    expect(quarantined.actions).toEqual(["thing.updated", "group.quarantined"]);
    expect([...iot.things.get(id)!.groups]).toEqual(["simroot-quarantined"]);
    expect(iot.things.get(id)!.attributes["simroot.state"]).toBe("quarantined");
    expect([...iot.groups.get("simroot-quarantined")!.policies]).toEqual(["simroot-quarantine-v2"]);
    const policy = JSON.parse(iot.policies.get("simroot-quarantine-v2")!);
    expect(policy.Statement[0]).toMatchObject({
      Effect: "Deny",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the IoT policy variable, literally as the policy document holds it
      NotResource: ["arn:aws:iot:*:*:topic/quarantine/${iot:Connection.Thing.ThingName}/*"],
    });
    // The group move is one batched call (UpdateThingGroupsForThing), not an add and a remove.
    const moves = iot.requests.slice(before).filter((request) => request.operation === "UpdateThingGroupsForThing");
    expect(moves.at(-1)!.body).toEqual({
      thingName: id,
      thingGroupsToAdd: ["simroot-quarantined"],
      thingGroupsToRemove: ["simroot-active"],
    });

    await acme.call("POST", `/v1/devices/${id}/reinstate`, { reason: "cleared" });
    expect((await deliver()).actions).toEqual(["thing.updated", "group.active"]);
    expect([...iot.things.get(id)!.groups]).toEqual(["simroot-active"]);
  });

  it("revoke sets the thing's certificates REVOKED and detaches their policies", async () => {
    const { acme, deliver } = await setUp();
    const id = (await acme.call("POST", "/v1/devices", meter)).json.id as string;
    await deliver();
    const certificate = iot.addCertificate(id, `cert${id.slice(-8).toLowerCase()}`, ["telemetry-publish"]);
    await acme.call("POST", `/v1/devices/${id}/revoke`, { reason: "stolen" });
    const revoked = await deliver();
    expect(revoked.actions).toEqual(
      expect.arrayContaining(["group.revoked", `certificate.revoked:${certificate}`, "policy.detached:telemetry-publish"]),
    );
    const stored = iot.certificates.get(certificate.slice(certificate.lastIndexOf("/") + 1))!;
    expect(stored.status).toBe("REVOKED");
    expect(stored.policies.size).toBe(0);
    expect([...iot.groups.get("simroot-revoked")!.policies]).toEqual(["simroot-deny-all"]);
  });

  it("is idempotent and audited once: a redelivered event changes nothing and adds no audit record", async () => {
    const { acme, deliver } = await setUp();
    const id = (await acme.call("POST", "/v1/devices", meter)).json.id as string;
    const first = await deliver();
    const audit = await committedEvents(runtime, acme.tenant.id);
    const synced = audit.filter((event) => event.type === "integration.iot-synced");
    expect(synced).toHaveLength(1);
    expect(synced[0]).toMatchObject({ subject: id, actor: "system:iot-sync", data: { cause: { type: "device.registered" } } });
    expect(synced[0]!.data.actions).toEqual(expect.arrayContaining(["thing.created", "group.active"]));

    const calls = iot.requests.length;
    const again = await deliver(first.events);
    expect(again.actions).toEqual([]);
    expect(iot.requests.length).toBe(calls);
    expect((await committedEvents(runtime, acme.tenant.id)).length).toBe(audit.length);
  });

  it("audits a change whose audit record failed to commit: the redelivery finds the thing in line and still records it, once", async () => {
    const { acme, settings, deliver } = await setUp();
    const id = (await acme.call("POST", `/v1/devices`, meter)).json.id as string;
    await deliver();
    await acme.call("POST", `/v1/devices/${id}/quarantine`, { reason: "IMEI changed" });
    const quarantine = (await committedEvents(runtime, acme.tenant.id)).find(
      (event) => event.type === "device.quarantined" && event.subject === id,
    )!;
    // One instance of the consumer, whose store times out its commit of the audit record (the ledger's resends too).
    const db = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    let refusing = true;
    const refused = failDeliveryRecords(db, acme.tenant.id, "iot", () => refusing);
    const ports = portsFor(db, runtime.ports.tables, runtime.bus);
    const control = sdkIotControl(client());
    try {
      await expect(syncDeviceToIot(ports, control, settings, quarantine)).rejects.toThrow();
      expect(refused.count).toBeGreaterThan(0);
      // IoT Core was changed: the thing is in the quarantine group.
      expect([...iot.things.get(id)!.groups]).toEqual(["simroot-quarantined"]);

      // The bus gives the event again, then once more (a duplicate): the change is recorded, once.
      refusing = false;
      await syncDeviceToIot(ports, control, settings, quarantine);
      await syncDeviceToIot(ports, control, settings, quarantine);
      const records = (await committedEvents(runtime, acme.tenant.id)).filter(
        (event) => event.type === "integration.iot-synced" && (event.data.cause as { eventId: string }).eventId === quarantine.id,
      );
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ subject: id, actor: "system:iot-sync", data: { state: "quarantined" } });
      expect(records[0]!.data.actions).toEqual(expect.arrayContaining(["thing.updated", "group.quarantined"]));
    } finally {
      db.destroy();
    }
  });

  it("does not record as done a group move an earlier attempt planned but never made, the device reinstated since (review 141)", async () => {
    const { acme, settings, control, deliver } = await setUp();
    const id = (await acme.call("POST", "/v1/devices", meter)).json.id as string;
    await deliver();
    await acme.call("POST", `/v1/devices/${id}/quarantine`, { reason: "IMEI changed" });
    const quarantine = (await committedEvents(runtime, acme.tenant.id)).find(
      (event) => event.type === "device.quarantined" && event.subject === id,
    )!;
    // The quarantine's first delivery plans its move, then IoT Core throttles the move: the thing stays in the active group.
    const throttled: IotControl = {
      ...control,
      moveThing: async () => {
        throw Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
      },
    };
    await expect(syncDeviceToIot(runtime.ports, throttled, settings, quarantine)).rejects.toThrow();
    expect([...iot.things.get(id)!.groups]).toEqual(["simroot-active"]);
    // The device is reinstated before the bus gives the quarantine again: its redelivery finds the thing in the active group.
    await acme.call("POST", `/v1/devices/${id}/reinstate`, { reason: "false alarm" });
    await syncDeviceToIot(runtime.ports, control, settings, quarantine);
    await deliver();
    expect([...iot.things.get(id)!.groups]).toEqual(["simroot-active"]);
    // The audit trail must not say the thing was moved to the quarantine group: it never was.
    const moves = (await committedEvents(runtime, acme.tenant.id))
      .filter((event) => event.type === "integration.iot-synced" && event.subject === id)
      .flatMap((event) => (event.data.actions as string[]).filter((action) => action.startsWith("group.")));
    expect(moves).toEqual(["group.active"]);
  });

  it("records nothing for a delivery that found nothing to change, though it planned to revoke a revoked thing's certificates again", async () => {
    const { acme, settings, control, deliver } = await setUp();
    const id = (await acme.call("POST", "/v1/devices", meter)).json.id as string;
    await deliver();
    iot.addCertificate(id, `cert${id.slice(-8).toLowerCase()}`, ["telemetry-publish"]);
    await acme.call("POST", `/v1/devices/${id}/revoke`, { reason: "stolen" });
    const { events } = await deliver();
    const audit = await committedEvents(runtime, acme.tenant.id);
    // Another event of the revoked device (its id new to the consumer), delivered twice: the certificate is revoked
    // already, so neither delivery changes anything, nor records anything.
    const later = { ...events.find((event) => event.type === "device.revoked")!, id: `evt_later_${id}` };
    expect(await syncDeviceToIot(runtime.ports, control, settings, later)).toEqual([]);
    expect(await syncDeviceToIot(runtime.ports, control, settings, later)).toEqual([]);
    expect((await committedEvents(runtime, acme.tenant.id)).length).toBe(audit.length);
  });

  it("a run whose thing another run changed between its read and its write reads it again, rather than failing to the bus's retry", async () => {
    const { acme, settings, control, deliver } = await setUp();
    const id = (await acme.call("POST", "/v1/devices", meter)).json.id as string;
    await deliver();
    await acme.call("POST", `/v1/devices/${id}/quarantine`, { reason: "IMEI changed" });
    const quarantine = (await committedEvents(runtime, acme.tenant.id)).find(
      (event) => event.type === "device.quarantined" && event.subject === id,
    )!;
    // While this run is about to update the thing, the device is suspended and that event's run (another instance)
    // updates the thing first: this run's update is refused (IoT's expectedVersion).
    let raced = false;
    const racing: IotControl = {
      ...control,
      updateThing: async (...args) => {
        if (!raced) {
          raced = true;
          await acme.call("POST", `/v1/devices/${id}/suspend`, { reason: "unpaid" });
          const suspended = (await committedEvents(runtime, acme.tenant.id)).find(
            (event) => event.type === "device.suspended" && event.subject === id,
          )!;
          expect(await syncDeviceToIot(runtime.ports, control, settings, suspended)).toContain("group.suspended");
        }
        return control.updateThing(...args);
      },
    };
    await syncDeviceToIot(runtime.ports, racing, settings, quarantine);
    expect(raced).toBe(true);
    const thing = iot.things.get(id)!;
    expect({ groups: [...thing.groups], state: thing.attributes["simroot.state"] }).toEqual({
      groups: ["simroot-suspended"],
      state: "suspended",
    });
  });

  it("converges whatever the order: a late registration event after a quarantine leaves the thing quarantined", async () => {
    const { acme, deliver } = await setUp();
    const id = (await acme.call("POST", "/v1/devices", meter)).json.id as string;
    await acme.call("POST", `/v1/devices/${id}/quarantine`, { reason: "roaming" });
    const events = await committedEvents(runtime, acme.tenant.id);
    await deliver([...events].reverse());
    expect([...iot.things.get(id)!.groups]).toEqual(["simroot-quarantined"]);
    expect(iot.things.get(id)!.attributes["simroot.state"]).toBe("quarantined");
  });

  it("touches only the configured tenant's devices", async () => {
    const { acme, control, settings } = await setUp();
    const other = await tenantClient(runtime, "other");
    const id = (await other.call("POST", "/v1/devices", { ...meter, eid: undefined, iccids: ["8944500102198304834"], imei: undefined }))
      .json.id as string;
    for (const event of await committedEvents(runtime, other.tenant.id)) {
      expect(await syncDeviceToIot(runtime.ports, control, settings, event)).toEqual([]);
    }
    expect(iot.things.has(id)).toBe(false);
    expect(settings.tenantId).toBe(acme.tenant.id);
  });

  it("is driven by simroot's events through the bus and the very consumer Lambda runs", async () => {
    const acme = await tenantClient(runtime);
    Object.assign(process.env, {
      SIMROOT_IOT_TENANT_ID: acme.tenant.id,
      SIMROOT_IOT_ENDPOINT: iot.endpoint,
      AWS_REGION: "eu-west-1",
      AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
      AWS_SECRET_ACCESS_KEY: "secret",
    });
    try {
      const id = (await acme.call("POST", "/v1/devices", { ...meter, eid: undefined, iccids: ["8944500102198304842"], imei: undefined }))
        .json.id as string;
      await acme.call("POST", `/v1/devices/${id}/quarantine`, { reason: "roaming" });
      const deadline = Date.now() + 10_000;
      while (!iot.things.get(id)?.groups.has("simroot-quarantined") && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect([...iot.things.get(id)!.groups]).toEqual(["simroot-quarantined"]);
    } finally {
      delete process.env.SIMROOT_IOT_TENANT_ID;
      delete process.env.SIMROOT_IOT_ENDPOINT;
    }
  });
});
