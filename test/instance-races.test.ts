/**
 * The same change asked of two instances at once (review 112): two runtimes sharing only the tables, as Lambda
 * instances do, each authenticating its request when it begins.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IoTClient } from "@aws-sdk/client-iot";
import { authenticate, createApiKey, rotateApiKey, syncDeviceToIot, syncPostureToTailscale, type Ports } from "@simroot/core";
import { sdkIotControl } from "../packages/core/src/integration/iot/iot-sdk.ts";
import type { IotControl } from "../packages/core/src/integration/iot/iot-port.ts";
import { startIotLoopback, type IotLoopback } from "../packages/core/src/integration/iot/iot-loopback.test-support.ts";
import { committedEvents } from "./support/audit-events.ts";
import { call, tenantClient, twoInstances, type TestRuntime } from "./support/runtime.ts";

// Two instances sharing only the tables.
const instances = twoInstances("r112");
let a: TestRuntime;
let b: TestRuntime;
let iot: IotLoopback;
beforeAll(async () => {
  ({ a, b } = instances);
  iot = await startIotLoopback();
});
afterAll(() => iot.close());
const iotClient = () =>
  new IoTClient({ endpoint: iot.endpoint, region: "eu-west-1", credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" } });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Tailscale's attribute API on loopback: an attribute is what the last request to arrive set (`applied`). A request
 * whose value `held` says is held until a revoked posture (state `revoked`, score 0) has arrived, or 5 s; one `refused`
 * says is answered 503.
 */
async function tailscaleLoopback(options: { held: (value: unknown) => boolean; refused?: (name: string, value: unknown) => boolean }) {
  const applied = new Map<string, unknown>();
  let revokedArrived: () => void = () => {};
  const revokedSent = new Promise<void>((resolve) => (revokedArrived = resolve));
  const server = createServer(async (request, response) => {
    let body = "";
    for await (const chunk of request) body += chunk;
    const { value } = JSON.parse(body) as { value: unknown };
    const name = decodeURIComponent(request.url!.split("/").pop()!);
    if (options.refused?.(name, value)) return void response.writeHead(503).end("busy");
    if (options.held(value)) await Promise.race([revokedSent, sleep(5_000)]);
    applied.set(name, value);
    if (applied.get("custom:simrootState") === "revoked" && applied.get("custom:simrootScore") === 0) revokedArrived();
    response.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { applied, server };
}

/** A device of a tenant of its own, registered and suspended, its thing synced through instance A (in the suspended group). */
async function suspendedThing(name: string, imsi: string) {
  const tenant = await tenantClient(a, `${name}-${randomBytes(3).toString("hex")}`);
  const settings = { tenantId: tenant.tenant.id, prefix: "simroot-" };
  const control = sdkIotControl(iotClient());
  const event = async (type: string) => (await committedEvents(a, tenant.tenant.id)).filter((e) => e.type === type).pop()!;
  const id = (await tenant.call("POST", "/v1/devices", { imsi })).json.id as string;
  await syncDeviceToIot(a.ports, control, settings, await event("device.registered"));
  expect((await tenant.call("POST", `/v1/devices/${id}/suspend`, { reason: "unpaid" })).status).toBe(200);
  await syncDeviceToIot(a.ports, control, settings, await event("device.suspended"));
  expect([...iot.things.get(id)!.groups]).toEqual(["simroot-suspended"]);
  return { tenant, settings, control, event, id };
}

describe("two instances asked conflicting changes at once (review 112)", () => {
  it("two admin keys revoking each other on two instances leave the tenant an admin key", async () => {
    const tenant = await tenantClient(a, `r112-keys-${randomBytes(3).toString("hex")}`);
    const second = (await tenant.call("POST", "/v1/keys", { name: "second admin", role: "admin" })).json;
    // Each key has been used on the instance that serves it (an admin's console, another admin's script).
    expect((await call(a, tenant.token, "GET", "/v1/keys")).status).toBe(200);
    expect((await call(b, second.token, "GET", "/v1/keys")).status).toBe(200);
    // One after the other, the second revocation is refused (401: its key was just revoked) and an admin key remains.
    const [first, other] = await Promise.all([
      call(a, tenant.token, "DELETE", `/v1/keys/${second.key.keyId}`),
      call(b, second.token, "DELETE", `/v1/keys/${tenant.keyId}`),
    ]);
    const { Items } = await a.ports.db.send(
      new QueryCommand({
        TableName: a.ports.tables.control,
        IndexName: "byTenant",
        KeyConditionExpression: "gsi1pk = :pk",
        ExpressionAttributeValues: { ":pk": `T#${tenant.tenant.id}#key` },
      }),
    );
    const liveAdminKeys = Items!.filter((key) => key.role === "admin" && !key.revokedAt).length;
    await sleep(1_100); // past the 1 s key cache of either instance
    const lockedOut = [(await call(a, tenant.token, "GET", "/v1/keys")).status, (await call(b, second.token, "GET", "/v1/keys")).status];
    expect(liveAdminKeys, JSON.stringify({ revocations: [first.status, other.status], adminCallsAfter: lockedOut })).toBe(1);
    // The refused one is told as its key's next request would be.
    expect([first.status, other.status].sort()).toEqual([200, 401]);
    expect(lockedOut.sort()).toEqual([200, 401]);
  });

  it("a device revoked while another instance syncs its reinstatement does not stay trusted in Tailscale", async () => {
    // Tailscale's API: an attribute is what the last request to arrive set. The first consumer's requests take longer to
    // get there (internet latency varies): they arrive once the second consumer's have (or after 5 s).
    const { applied, server } = await tailscaleLoopback({
      held: (value) => value === "active" || (typeof value === "number" && value > 0),
    });
    try {
      const tenant = await tenantClient(a, `r112-ts-${randomBytes(3).toString("hex")}`);
      const settings = { tenantId: tenant.tenant.id, apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiKey: "k" };
      const device = (await tenant.call("POST", "/v1/devices", { imsi: "208011234561120", labels: { "tailscale/node": "nR112" } })).json;
      const event = async (type: string) => (await committedEvents(a, tenant.tenant.id)).filter((e) => e.type === type).pop()!;
      await syncPostureToTailscale(a.ports, settings, await event("device.registered"));
      await tenant.call("POST", `/v1/devices/${device.id}/quarantine`, { reason: "IMEI changed" });
      await syncPostureToTailscale(a.ports, settings, await event("device.quarantined"));
      expect(applied.get("custom:simrootState")).toBe("quarantined");
      // Reinstated; then, a moment later, revoked (stolen). Each event reaches its own consumer instance.
      await tenant.call("POST", `/v1/devices/${device.id}/reinstate`, { reason: "false alarm" });
      const reinstated = await event("device.reinstated");
      await Promise.all([
        syncPostureToTailscale(a.ports, settings, reinstated),
        (async () => {
          await sleep(100);
          expect((await call(b, tenant.token, "POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" })).status).toBe(200);
          await syncPostureToTailscale(b.ports, settings, await event("device.revoked"));
        })(),
      ]);
      expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.state).toBe("revoked");
      // The bus delivering the revocation again changes nothing (already delivered).
      await syncPostureToTailscale(b.ports, settings, await event("device.revoked"));
      expect({ state: applied.get("custom:simrootState"), score: applied.get("custom:simrootScore") }).toEqual({
        state: "revoked",
        score: 0,
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("a device suspended while another instance syncs its reinstatement does not stay in the active thing group", async () => {
    const { tenant, settings, control, event, id } = await suspendedThing("r115-iot", "208011234561151");

    // Instance A syncs the reinstatement; its UpdateThingGroupsForThing is slow to get to IoT (a throttled retry, latency)
    // and lands after instance B has synced the suspension that followed.
    let atMove: () => void = () => {};
    const aAtMove = new Promise<void>((resolve) => (atMove = resolve));
    let bFinished: () => void = () => {};
    const bDone = new Promise<void>((resolve) => (bFinished = resolve));
    const slowMoves: IotControl = {
      ...control,
      moveThing: async (name, add, remove) => {
        atMove();
        await Promise.race([bDone, sleep(15_000)]);
        return control.moveThing(name, add, remove);
      },
    };
    expect((await tenant.call("POST", `/v1/devices/${id}/reinstate`, { reason: "paid" })).status).toBe(200);
    const reinstated = await event("device.reinstated");
    const aRun = syncDeviceToIot(a.ports, slowMoves, settings, reinstated);
    await aAtMove;
    expect((await call(b, tenant.token, "POST", `/v1/devices/${id}/suspend`, { reason: "unpaid again" })).status).toBe(200);
    const bActions = await syncDeviceToIot(b.ports, control, settings, await event("device.suspended"));
    bFinished();
    const aActions = await aRun;

    expect((await tenant.call("GET", `/v1/devices/${id}`)).json.state).toBe("suspended");
    // The bus delivering both again changes nothing: each was delivered (and audited) once.
    await syncDeviceToIot(a.ports, control, settings, reinstated);
    await syncDeviceToIot(b.ports, control, settings, await event("device.suspended"));
    const thing = iot.things.get(id)!;
    expect(
      { groups: [...thing.groups], stateAttribute: thing.attributes["simroot.state"] },
      JSON.stringify({ aActions, bActions }),
    ).toEqual({ groups: ["simroot-suspended"], stateAttribute: "suspended" });
  });

  it("a revoked device's posture stands in Tailscale when a reinstatement's push that partly failed lands after it (review 116)", async () => {
    // Tailscale degraded: the reinstatement's score request is refused (503); its state request is slow, and lands after
    // the revocation's requests.
    let refusing = false;
    const { applied, server } = await tailscaleLoopback({
      held: (value) => value === "active",
      refused: (name, value) => refusing && name === "custom:simrootScore" && typeof value === "number" && value > 0,
    });
    try {
      const tenant = await tenantClient(a, `r116-ts-${randomBytes(3).toString("hex")}`);
      const settings = { tenantId: tenant.tenant.id, apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiKey: "k" };
      const device = (await tenant.call("POST", "/v1/devices", { imsi: "208011234561161", labels: { "tailscale/node": "nR116" } })).json;
      const event = async (type: string) => (await committedEvents(a, tenant.tenant.id)).filter((e) => e.type === type).pop()!;
      await tenant.call("POST", `/v1/devices/${device.id}/quarantine`, { reason: "IMEI changed" });
      await syncPostureToTailscale(a.ports, settings, await event("device.quarantined"));
      expect(applied.get("custom:simrootState")).toBe("quarantined");
      await tenant.call("POST", `/v1/devices/${device.id}/reinstate`, { reason: "false alarm" });
      const reinstated = await event("device.reinstated");
      refusing = true;
      const [aOutcome] = await Promise.allSettled([
        syncPostureToTailscale(a.ports, settings, reinstated),
        (async () => {
          await sleep(100);
          expect((await call(b, tenant.token, "POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" })).status).toBe(200);
          await syncPostureToTailscale(b.ports, settings, await event("device.revoked"));
        })(),
      ]);
      expect(aOutcome.status).toBe("rejected"); // the 503: the bus retries the reinstatement's event
      refusing = false;
      // The bus retries (Tailscale answers everything now, it is past the outage) and delivers the revocation again.
      await syncPostureToTailscale(a.ports, settings, reinstated);
      await syncPostureToTailscale(b.ports, settings, await event("device.revoked"));
      expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.state).toBe("revoked");
      expect({ state: applied.get("custom:simrootState"), score: applied.get("custom:simrootScore") }).toEqual({
        state: "revoked",
        score: 0,
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("a device that keeps changing while a run reconciles its thing ends in its state's group once the bus gives the event again (review 116)", async () => {
    const { tenant, settings, control, event, id } = await suspendedThing("r116-iot", "208011234561162");

    // Instance A syncs a reinstatement; each of its group moves is slow (throttled). Meanwhile the device flaps (an
    // automation suspends and reinstates it), and each change's own run (instance B) completes before A's move lands.
    const flips = ["suspend", "reinstate", "suspend"];
    const slowMoves: IotControl = {
      ...control,
      moveThing: async (name, add, remove) => {
        const flip = flips.shift();
        if (flip) {
          expect((await call(b, tenant.token, "POST", `/v1/devices/${id}/${flip}`, { reason: "flap" })).status).toBe(200);
          const type = flip === "suspend" ? "device.suspended" : "device.reinstated";
          await syncDeviceToIot(b.ports, control, settings, await event(type));
        }
        return control.moveThing(name, add, remove);
      },
    };
    expect((await tenant.call("POST", `/v1/devices/${id}/reinstate`, { reason: "paid" })).status).toBe(200);
    const reinstated = await event("device.reinstated");
    // Still changing at its round limit: A's run fails, so the bus gives the reinstatement again (here to B).
    const aActions = await syncDeviceToIot(a.ports, slowMoves, settings, reinstated).catch((error: { code?: string }) => error.code);
    expect(aActions).toBe("integration.iot_busy");
    await syncDeviceToIot(b.ports, control, settings, reinstated);
    await syncDeviceToIot(b.ports, control, settings, await event("device.suspended"));

    expect((await tenant.call("GET", `/v1/devices/${id}`)).json.state).toBe("suspended");
    const thing = iot.things.get(id)!;
    expect({ groups: [...thing.groups], stateAttribute: thing.attributes["simroot.state"] }, JSON.stringify(aActions)).toEqual({
      groups: ["simroot-suspended"],
      stateAttribute: "suspended",
    });
  });

  it("a change of keys made with a secret rotated while the request was under way is refused (review 114)", async () => {
    const tenant = await tenantClient(a, `r114-rot-${randomBytes(3).toString("hex")}`);
    const second = (await tenant.call("POST", "/v1/keys", { name: "leaked admin", role: "admin" })).json;
    // The leaked key's request, authenticated (on instance B) before the key was rotated: its context as B's API made it.
    const principal = await authenticate(b.ports, second.token);
    const ctx = {
      tenantId: principal.tenantId,
      actor: `key:${principal.keyId}`,
      requestId: "r114-leaked",
      role: principal.role,
      keySecretHash: principal.secretHash!,
    };
    // The tenant rotates the leaked key (through A); then the request under way commits.
    expect((await tenant.call("POST", `/v1/keys/${second.key.keyId}/rotate`)).status).toBe(200);
    await expect(createApiKey(b.ports, ctx, { name: "backdoor", role: "admin" })).rejects.toMatchObject({ code: "auth.invalid_key" });
    const names = (await tenant.call("GET", "/v1/keys?limit=100")).json.items.map((key: { name: string }) => key.name);
    expect(names).not.toContain("backdoor");
  });

  it("a key rotated on two instances from the same read answers one token that works and refuses the other", async () => {
    const tenant = await tenantClient(a, `r112-rot-${randomBytes(3).toString("hex")}`);
    const pep = (await tenant.call("POST", "/v1/keys", { name: "site pep", role: "pep" })).json;
    // Both instances read the key before either writes (the requests arrived together).
    let read = 0;
    let bothRead: () => void = () => {};
    const barrier = new Promise<void>((resolve) => (bothRead = resolve));
    const readingTogether = (runtime: TestRuntime): Ports => ({
      ...runtime.ports,
      db: {
        send: async (command: { constructor: { name: string } }) => {
          const result = await runtime.ports.db.send(command as never);
          if (command.constructor.name === "GetCommand" && ++read === 2) bothRead();
          if (command.constructor.name === "GetCommand") await Promise.race([barrier, sleep(5_000)]);
          return result;
        },
      } as unknown as Ports["db"],
    });
    const ctx = { tenantId: tenant.tenant.id, actor: `key:${tenant.keyId}`, requestId: "r112-rotate" };
    const outcomes = await Promise.allSettled([
      rotateApiKey(readingTogether(a), ctx, { id: pep.key.keyId }),
      rotateApiKey(readingTogether(b), ctx, { id: pep.key.keyId }),
    ]);
    await sleep(1_100); // past the 1 s key cache of either instance
    const answered = outcomes.flatMap((outcome) => (outcome.status === "fulfilled" ? [outcome.value.value.token] : []));
    const refused = outcomes.flatMap((outcome) => (outcome.status === "rejected" ? [(outcome.reason as { code?: string }).code] : []));
    expect({ answered: answered.length, refused }).toEqual({ answered: 1, refused: ["key.rotated_concurrently"] });
    // The token answered works.
    expect((await call(a, answered[0], "GET", "/v1/feed?wait=0")).status).toBe(200);
  });
});
