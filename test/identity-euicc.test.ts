/**
 * eUICC notifications end to end: an eim source configured with its GSMA CI trust anchor
 * applies genuine notifications, and refuses (problem+json, audited as ingest.refused) a
 * tampered one, which changes nothing.
 */
import * as asn1js from "asn1js";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { documentClient, resolveDevice } from "@simroot/core";
import { aliasCacheMs, readDevice, rememberDevice } from "@simroot/core/device/store";
import { aliasKey } from "@simroot/core/device/keys";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { createTestPki, signedOtherNotification, withEidCheckDigits } from "../packages/core/src/ingest/adapters/eim-pki.test-support.ts";
import { simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const eid = "89049032123451234512345678901235";
const iccid = "8944500102198304826";
const pki = createTestPki();
const euicc = pki.euicc(eid);

async function setup() {
  const tenant = await tenantClient(runtime);
  const created = await tenant.call("POST", "/v1/sources", { name: "eIM", format: "eim", credentials: { trustAnchors: [pki.ci.pem] } });
  expect(created.status).toBe(201);
  const { source, credentials } = created.json;
  const post = async (notification: Uint8Array) => {
    const response = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: { authorization: `Bearer ${credentials.bearerToken}`, "content-type": "application/json" },
      body: JSON.stringify({ pendingNotification: Buffer.from(notification).toString("base64") }),
    });
    await runtime.settled();
    return { status: response.status, type: response.headers.get("content-type"), json: await response.json() };
  };
  const device = (await tenant.call("POST", "/v1/devices", { eid, iccids: [iccid] })).json;
  return { tenant, source, post, device };
}

describe("eUICC notifications are verified against the source's trust anchors", () => {
  it("applies genuine notifications and refuses a tampered one with problem+json, recorded as refused", async () => {
    const { tenant, post, device } = await setup();
    expect((await post(signedOtherNotification(1, "enable", iccid, euicc, pki.eum))).status).toBe(202);
    expect((await post(signedOtherNotification(2, "delete", iccid, euicc, pki.eum))).status).toBe(202);
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.profiles[iccid].state).toBe("deleted");

    // The replay: seqNumber 2 rewritten to 9 after signing, the operation to enable.
    const genuine = signedOtherNotification(2, "delete", iccid, euicc, pki.eum);
    const forged = signedOtherNotification(9, "enable", iccid, euicc, pki.eum);
    const [forgedMetadata] = (asn1js.fromBER(forged).result as asn1js.Sequence).valueBlock.value;
    const [, ...signatureAndCertificates] = (asn1js.fromBER(genuine).result as asn1js.Sequence).valueBlock.value;
    const tampered = new Uint8Array(new asn1js.Sequence({ value: [forgedMetadata!, ...signatureAndCertificates] }).toBER());
    const refused = await post(tampered);
    expect(refused.status).toBe(400);
    expect(refused.type).toContain("application/problem+json");
    expect(refused.json).toMatchObject({ type: "urn:simroot:problem:ingest.unverified" });
    expect(JSON.stringify(refused.json)).toContain("signature does not verify");

    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.profiles[iccid].state).toBe("deleted");
    const audit = (await tenant.call("GET", "/v1/audit?limit=100")).json.items;
    expect(audit.map((record: { action: string }) => record.action)).toContain("ingest.refused");
  });

  it("parks a genuine notification naming an EID other than its ICCID's device's, and applies it to that eUICC's device once registered (review 95)", async () => {
    const { tenant, post, device } = await setup();
    expect((await post(signedOtherNotification(1, "enable", iccid, euicc, pki.eum))).status).toBe(202);
    // Another eUICC of the same manufacturer, unknown to the tenant, signs a deletion of the device's profile.
    const strayEid = withEidCheckDigits("890490321234512345123456789099");
    const stray = await post(signedOtherNotification(1, "delete", iccid, pki.euicc(strayEid), pki.eum));
    expect(stray.status).toBe(202);
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.profiles[iccid]).toMatchObject({ state: "enabled", eid });
    const parked = (await tenant.call("GET", "/v1/dead-letters?limit=100")).json.items as { reason: string }[];
    expect(parked.map((letter) => letter.reason)).toContainEqual(expect.stringContaining(`the EID ${strayEid}`));

    // A device registered with no EID takes the EID its profiles were reported with: another eUICC is refused as well.
    const bareIccid = "8944500102198304875";
    const bareEid = withEidCheckDigits("890490321234512345123456789088");
    const bare = (await tenant.call("POST", "/v1/devices", { iccids: [bareIccid] })).json;
    expect((await post(signedOtherNotification(1, "enable", bareIccid, pki.euicc(bareEid), pki.eum))).status).toBe(202);
    expect((await post(signedOtherNotification(2, "delete", bareIccid, pki.euicc(strayEid), pki.eum))).status).toBe(202);
    const profile = () => tenant.call("GET", `/v1/devices/${bare.id}`).then((got) => got.json.identity.profiles[bareIccid]);
    expect(await profile()).toMatchObject({ state: "enabled", eid: bareEid });

    // Kept, not lost: the eUICC registered as a device of its own, its notifications are applied to it, none to the other.
    const swapped = (await tenant.call("POST", "/v1/devices", { eid: strayEid })).json;
    await runtime.settled();
    expect((await tenant.call("GET", `/v1/devices/${swapped.id}`)).json.identity.profiles).toMatchObject({
      [iccid]: { state: "deleted", eid: strayEid },
      [bareIccid]: { state: "deleted", eid: strayEid },
    });
    expect(await profile()).toMatchObject({ state: "enabled", eid: bareEid });
  });

  it("judges the EID on the device as the store holds it, and by the EID a profile fact's data names (review 96)", async () => {
    const { tenant, post } = await setup();
    const send = await simrootSource(runtime, tenant);
    const realEid = withEidCheckDigits("890490321234512345123456789011");
    const strayEid = withEidCheckDigits("890490321234512345123456789099");
    // This instance last read the device before its eUICC first reported (another instance applied that report).
    const cachedIccid = "8944500102198304883";
    const cached = (await tenant.call("POST", "/v1/devices", { iccids: [cachedIccid] })).json;
    const before = (await readDevice(runtime.ports, tenant.tenant.id, cached.id))!;
    expect((await post(signedOtherNotification(1, "enable", cachedIccid, pki.euicc(realEid), pki.eum))).status).toBe(202);
    rememberDevice(runtime.ports, before);
    expect((await post(signedOtherNotification(2, "delete", cachedIccid, pki.euicc(strayEid), pki.eum))).status).toBe(202);
    const profileOf = async (id: string, of: string) => (await tenant.call("GET", `/v1/devices/${id}`)).json.identity.profiles[of];
    expect(await profileOf(cached.id, cachedIccid)).toMatchObject({ state: "enabled", eid: realEid });
    // A source's profile fact naming its device by ICCID alone, another EID in its data.
    const namedIccid = "8944500102198304891";
    const named = (await tenant.call("POST", "/v1/devices", { iccids: [namedIccid] })).json;
    expect((await post(signedOtherNotification(3, "enable", namedIccid, pki.euicc(realEid), pki.eum))).status).toBe(202);
    const deleted = { eid: strayEid, iccid: namedIccid, seqNumber: 4 };
    const reported = { dedupeKey: "stray-1", sequence: 4, occurredAt: new Date().toISOString(), sourceType: "eim" };
    await send({ ...reported, type: "profile.deleted", data: deleted, device: { iccid: namedIccid } });
    await send({ ...reported, dedupeKey: "stray-2", type: "profile.deleted", data: deleted, device: { iccid: namedIccid, eid: realEid } });
    expect(await profileOf(named.id, namedIccid)).toMatchObject({ state: "enabled", eid: realEid });
    const reasons = ((await tenant.call("GET", "/v1/dead-letters?limit=100")).json.items as { reason: string }[]).map(
      (letter) => letter.reason,
    );
    expect(reasons).toContainEqual(expect.stringContaining(`it names two EIDs: ${realEid} for its device, ${strayEid} in its data`));
  });

  it("refuses a notification certified by a genuine EUM for an EID outside its name constraints, which changes nothing", async () => {
    const { tenant, post } = await setup();
    // Another manufacturer's eUICC (IIN 89086030), registered by the tenant; the test EUM may certify 89049032 only.
    const foreignEid = withEidCheckDigits("890860302022000000240000000001");
    const foreignIccid = "8944500102198304867";
    const foreign = (await tenant.call("POST", "/v1/devices", { eid: foreignEid, iccids: [foreignIccid] })).json;
    const before = (await tenant.call("GET", `/v1/devices/${foreign.id}`)).json;
    const refused = await post(signedOtherNotification(1, "delete", foreignIccid, pki.euicc(foreignEid), pki.eum));
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ type: "urn:simroot:problem:ingest.unverified" });
    expect(JSON.stringify(refused.json)).toContain(`the EID ${foreignEid} is outside the EIDs the EUM certificate may certify`);
    expect((await tenant.call("GET", `/v1/devices/${foreign.id}`)).json.identity).toEqual(before.identity);
    const timeline = (await tenant.call("GET", `/v1/devices/${foreign.id}/timeline`)).json;
    expect(JSON.stringify(timeline)).not.toContain("profile.deleted");
  });

  it("refuses an unsigned ES2+ download outcome, which would have given the device an ICCID no eUICC reported (review 78)", async () => {
    const { tenant, source, device } = await setup();
    const token = (await tenant.call("POST", `/v1/sources/${source.id}/rotate`)).json.credentials.bearerToken;
    const unclaimed = "8944500102198304834";
    const response = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({
        header: { functionRequesterIdentifier: "smdp.example.com", functionCallIdentifier: "TX-78" },
        eid,
        iccid: unclaimed,
        timestamp: new Date().toISOString(),
        notificationPointId: 4,
        notificationPointStatus: { status: "Executed-Success" },
      }),
    });
    await runtime.settled();
    expect(response.status).toBe(400);
    expect(((await response.json()) as { type: string }).type).toBe("urn:simroot:problem:ingest.unverified");
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.profiles[unclaimed]).toBeUndefined();
    expect((await tenant.call("GET", `/v1/devices/lookup?iccid=${unclaimed}`)).status).toBe(404);
  });

  it("refuses trust anchors that are not PEM certificates when the source is created", async () => {
    const tenant = await tenantClient(runtime);
    const created = await tenant.call("POST", "/v1/sources", {
      name: "eIM",
      format: "eim",
      credentials: { trustAnchors: ["not a certificate"] },
    });
    expect(created.status).toBe(400);
    expect(created.json.type).toBe("urn:simroot:problem:source.trust_anchors_invalid");
  });
});

/**
 * The reports an eIM makes of the eUICC with this EID, each the next in seqNumber order (dated a minute ago on), as the
 * normalized facts a simroot source takes.
 */
function profileReports(eidOf: string) {
  let sequence = 0;
  return (type: string, iccidOf: string, data: Record<string, unknown> = {}) => {
    const seqNumber = ++sequence;
    return {
      type,
      dedupeKey: `profile-${seqNumber}`,
      occurredAt: new Date(Date.now() - 60_000 + seqNumber).toISOString(),
      device: { eid: eidOf },
      sourceType: "eim",
      data: { eid: eidOf, iccid: iccidOf, seqNumber, ...data },
    };
  };
}

describe("an eUICC's new profiles identify its device (review 58)", () => {
  it("resolves reports naming a profile the eIM installed, releases it with the device, and leaves another device's alone", async () => {
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const eidOf = "89049032123451234512345678901235";
    const device = (await tenant.call("POST", "/v1/devices", { eid: eidOf, iccids: ["8944500102198304826"] })).json;
    const other = (await tenant.call("POST", "/v1/devices", { imsi: "208010000000077", iccids: ["8944500102198304842"] })).json;
    const profileFact = profileReports(eidOf);
    await report(
      profileFact("profile.installed", "8944500102198304834F", { result: "success" }),
      profileFact("profile.enabled", "8944500102198304834F"),
      // A profile whose ICCID another device of the tenant was registered with: it stays that device's.
      profileFact("profile.installed", "8944500102198304842", { result: "success" }),
    );
    const lookup = async (iccidOf: string) => (await tenant.call("GET", `/v1/devices/lookup?iccid=${iccidOf}`)).json.id;
    expect(await lookup("8944500102198304834")).toBe(device.id);
    expect(await lookup("8944500102198304834F")).toBe(device.id);
    expect(await lookup("8944500102198304842")).toBe(other.id);
    // An operator's report from the new profile reaches the device.
    await report({
      type: "sim.attached",
      dedupeKey: "attach-new-profile",
      occurredAt: new Date().toISOString(),
      device: { iccid: "8944500102198304834" },
      sourceType: "core",
      data: { bearer: "cellular", ipv4: "10.44.0.1" },
    });
    expect((await tenant.call("GET", "/v1/devices/lookup?ip=10.44.0.1")).json.id).toBe(device.id);
    // Revoked, the device releases the profile's ICCID (a SIM can be registered with it again), not the other's.
    expect((await tenant.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    expect((await tenant.call("POST", "/v1/devices", { iccids: ["8944500102198304834"] })).status).toBe(201);
    expect(await lookup("8944500102198304842")).toBe(other.id);
  });

  it("releases a deleted profile's ICCID, and keeps it when the profile is installed again (review 60)", async () => {
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const eidOf = "89049032123451234512345678901235";
    const device = (await tenant.call("POST", "/v1/devices", { eid: eidOf, iccids: ["8944500102198304826"] })).json;
    const report834 = profileReports(eidOf);
    const profileFact = (type: string, data: Record<string, unknown> = {}) => report834(type, "8944500102198304834", data);
    const lookup = async () => (await tenant.call("GET", "/v1/devices/lookup?iccid=8944500102198304834")).status;
    await report(profileFact("profile.installed", { result: "success" }), profileFact("profile.enabled"));
    expect(await lookup()).toBe(200);
    // Deleted from the eUICC, the profile no longer names the device: its ICCID stayed the device's alias until the
    // device was revoked, so a report naming it was applied to the device and no other SIM could be registered with it.
    await report(profileFact("profile.disabled"), profileFact("profile.deleted"));
    expect(await lookup()).toBe(404);
    await report(profileFact("profile.installed", { result: "success" }));
    expect(await lookup()).toBe(200);
    await report(profileFact("profile.deleted"));
    const other = await tenant.call("POST", "/v1/devices", { iccids: ["8944500102198304834"] });
    expect(other.status, other.text).toBe(201);
    // The registered ICCID stays the device's whatever its profile's state.
    await report(report834("profile.deleted", "8944500102198304826"));
    expect((await tenant.call("GET", "/v1/devices/lookup?iccid=8944500102198304826")).json.id).toBe(device.id);
  });

  it("takes an ICCID spelled with its F padding and without for one profile (review 61)", async () => {
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const eidOf = "89049032123451234512345678901235";
    const device = (await tenant.call("POST", "/v1/devices", { eid: eidOf })).json;
    const profileFact = profileReports(eidOf);
    await report(profileFact("profile.installed", "8944500102198304883F", { result: "success" }));
    expect((await tenant.call("GET", "/v1/devices/lookup?iccid=8944500102198304883")).json.id).toBe(device.id);
    // Deleted as spelled without the F: the same profile (two were kept, the padded one installed, its alias held).
    await report(profileFact("profile.deleted", "8944500102198304883"));
    const profiles = (await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.profiles;
    expect(Object.keys(profiles)).toEqual(["8944500102198304883"]);
    expect(profiles["8944500102198304883"].state).toBe("deleted");
    expect((await tenant.call("GET", "/v1/devices/lookup?iccid=8944500102198304883")).status).toBe(404);
  });

  it("releases at revocation the alias a deleted profile's ICCID kept before deletions released them (review 61)", async () => {
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const eidOf = "89049032123451234512345678901235";
    const profile = "8944500102198304891";
    const device = (await tenant.call("POST", "/v1/devices", { eid: eidOf, imsi: "208015550000031" })).json;
    const reports = profileReports(eidOf);
    const profileFact = (type: string, data: Record<string, unknown> = {}) => reports(type, profile, data);
    await report(profileFact("profile.installed", { result: "success" }), profileFact("profile.deleted"));
    // What a deletion left before 2026-12-05: the alias still the device's.
    await runtime.ports.db.send(
      new PutCommand({
        TableName: runtime.ports.tables.identity,
        Item: { ...aliasKey(tenant.tenant.id, "iccid", profile), deviceId: device.id, kind: "iccid", value: profile },
      }),
    );
    expect((await tenant.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "decommissioned" })).status).toBe(200);
    // Released with the device, as its revocation released it before: the ICCID can be registered again.
    const again = await tenant.call("POST", "/v1/devices", { iccids: [profile] });
    expect(again.status, again.text).toBe(201);
  });

  it("shows another instance's release of a profile ICCID within the alias cache's lifetime", async () => {
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const eidOf = "89049032123451234512345678901235";
    const device = (await tenant.call("POST", "/v1/devices", { eid: eidOf })).json;
    const profileFact = profileReports(eidOf);
    await report(profileFact("profile.installed", "8944500102198304867", { result: "success" }));
    // Another instance (its own client, so its own caches) resolves the ICCID and keeps it.
    const other = { ...runtime.ports, db: documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" }) };
    const resolve = () => resolveDevice(other, tenant.tenant.id, { iccid: "8944500102198304867" });
    expect(await resolve()).toBe(device.id);
    await report(profileFact("profile.deleted", "8944500102198304867"));
    const now = Date.now();
    const clock = vi.spyOn(Date, "now");
    try {
      clock.mockReturnValue(now + aliasCacheMs - 1_000);
      expect(await resolve()).toBe(device.id);
      clock.mockReturnValue(now + aliasCacheMs + 1);
      expect(await resolve()).toBeUndefined();
    } finally {
      clock.mockRestore();
    }
  });

  it("leaves a late report naming a profile ICCID to the device that held it, not to another revoked device that reported the profile (review 60)", async () => {
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const eidOf = "89049032123451234512345678901235";
    // The ICCID is registered to the first device; the second's eIM reports a profile with it: its alias is never written.
    const first = (await tenant.call("POST", "/v1/devices", { imsi: "208010000000088", iccids: ["8944500102198304859"] })).json;
    const second = (await tenant.call("POST", "/v1/devices", { eid: eidOf })).json;
    await report({
      type: "profile.installed",
      dedupeKey: "install-late",
      occurredAt: new Date(Date.now() - 60_000).toISOString(),
      device: { eid: eidOf },
      sourceType: "eim",
      data: { eid: eidOf, iccid: "8944500102198304859", seqNumber: 1, result: "success" },
    });
    expect((await tenant.call("GET", "/v1/devices/lookup?iccid=8944500102198304859")).json.id).toBe(first.id);
    expect((await tenant.call("POST", `/v1/devices/${first.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    expect((await tenant.call("POST", `/v1/devices/${second.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    // The second's revocation wrote a tombstone for an alias it never held: the newer tombstone took the late report.
    const revision = async (id: string) => (await tenant.call("GET", `/v1/devices/${id}`)).json.revision as number;
    const revisions = [await revision(first.id), await revision(second.id)];
    await report({
      type: "sim.detached",
      dedupeKey: "detach-late",
      occurredAt: new Date().toISOString(),
      device: { iccid: "8944500102198304859" },
      sourceType: "core",
      data: { bearer: "cellular" },
    });
    // Folded into the revoked device's history (its revision moves), though revoked is terminal and nothing shows.
    expect([await revision(first.id), await revision(second.id)]).toEqual([revisions[0]! + 1, revisions[1]]);
  });
});
