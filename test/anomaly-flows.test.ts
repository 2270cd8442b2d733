/**
 * The flow detectors (review 132): volumes past a safe integer, a report sent again, what a segment learns from a
 * flagged window, a late report known by address, a device moved to another fleet.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBaseline } from "@simroot/core";
import { call, coreFact, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { flowReport, hour, teachBaseline } from "./support/flows.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let n = 0;
async function setup(labels: Record<string, string> = { fleet: "meters" }) {
  const tenant = await tenantClient(runtime, `anr-${++n}`);
  const pep = (await tenant.call("POST", "/v1/keys", { name: "edge", role: "pep" })).json.token as string;
  const register = async (name: string) => {
    const answer = await tenant.call("POST", "/v1/devices", { name, imsi: `23410555${String(++n).padStart(7, "0")}`, labels });
    expect(answer.status, answer.text).toBe(201);
    return answer.json.id as string;
  };
  const post = (report: unknown) => call(runtime, pep, "POST", "/v1/flows", report);
  const anomalies = async (deviceId: string) =>
    (await tenant.call("GET", `/v1/devices/${deviceId}/timeline?limit=500`)).json.items.filter(
      (entry: { type: string }) => entry.type === "anomaly.detected",
    );
  return { tenant, pep, register, post, anomalies };
}

/** Meters A (its baseline taught) and B of one tenant, with the tenant's core reporting their sessions. */
async function twoMeters() {
  const meters = await setup();
  const report = await simrootSource(runtime, meters.tenant);
  const imsiOf = async (id: string) => (await meters.tenant.call("GET", `/v1/devices/${id}`)).json.imsi as string;
  const a = await meters.register("meter-a");
  const b = await meters.register("meter-b");
  await teachBaseline(meters.post, a);
  return { ...meters, report, imsiOf, a, b };
}

/** A window's flows to a C2 host, known only by their source address, as a PEP reports them (answered 202). */
async function postC2ByAddress(post: (report: unknown) => ReturnType<typeof call>, address: string, windowEnd: number) {
  const window = flowReport("unused", new Date(windowEnd), [{ destination: "c2.attacker.example" }]);
  const flows = window.flows.map(({ deviceId: _, ...flow }) => ({ ...flow, sourceIp: address }));
  const answer = await post({ ...window, flows });
  expect(answer.status, answer.text).toBe(202);
  return answer;
}

describe("flow detectors", { timeout: 120_000 }, () => {
  it("a device whose window volume varies by a few hundred MB is judged, not answered 500 (baseline variance beyond a safe integer)", async () => {
    const { register, post, tenant } = await setup();
    const deviceId = await register("camera");
    const now = Date.now();
    const first = await post(flowReport(deviceId, new Date(now - 2 * hour), [{ destination: "video.example.com", bytes: 10_000 }]));
    expect(first.status, first.text).toBe(202);
    // 400 MB in a 5-minute window: a camera uploading a clip. Valid per the schema.
    const report = flowReport(deviceId, new Date(now - hour), [{ destination: "video.example.com", bytes: 400_000_000 }]);
    const second = await post(report);
    // The report was stored before the detectors threw: the PEP retries it, and each retry stores it again.
    const traffic = (await tenant.call("GET", "/v1/traffic?hours=3")).json;
    expect(second.status, `${second.text} traffic=${JSON.stringify(traffic).slice(0, 300)}`).toBe(202);
    expect((await readBaseline(runtime.ports, tenant.tenant.id, deviceId))?.windows).toBe(2);
  });

  it("a window whose flows sum beyond a safe integer is answered 4xx (or judged), never 500 after being stored", async () => {
    const { register, post } = await setup();
    const deviceId = await register("meter");
    const huge = 5_000_000_000_000_000; // each flow's bytes is a valid safe integer
    const answer = await post(
      flowReport(deviceId, new Date(Date.now() - 60_000), [
        { destination: "a.example.com", bytes: huge },
        { destination: "b.example.com", bytes: huge },
      ]),
    );
    expect(answer.status, answer.text).toBeLessThan(500);
  });

  it("a flow report the PEP sends again (its answer lost) raises its anomaly once", async () => {
    const { register, post, anomalies } = await setup();
    const deviceId = await register("meter");
    await teachBaseline(post, deviceId);
    const report = flowReport(deviceId, new Date(Date.now() - 30_000), [{ destination: "telemetry.example.com", bytes: 50_000_000 }]);
    const first = await post(report);
    expect(first.json.anomalies).toBe(1);
    // The PEP's FlowReporter keeps a report at the head of its queue until it is answered 2xx; a timeout sends it again.
    const again = await post(report);
    expect(again.status).toBe(202);
    const found = await anomalies(deviceId);
    expect(found.map((entry: { data: { kind: string } }) => entry.data.kind)).toEqual(["volume-spike"]);
  });

  it("a destination flagged as anomalous for one device does not become 'known to the segment' for its fleet", async () => {
    const { register, post, anomalies } = await setup();
    const a = await register("meter-a");
    const b = await register("meter-b");
    await teachBaseline(post, a);
    await teachBaseline(post, b);
    // Meter A is compromised and reaches the attacker's host: flagged.
    const odd = await post(flowReport(a, new Date(Date.now() - 30_000), [{ destination: "c2.attacker.example", bytes: 5000 }]));
    expect(odd.json.anomalies).toBe(1);
    // The attacker moves to meter B, same host: the segment learned it from A's anomalous window, so B is not flagged.
    const lateral = await post(flowReport(b, new Date(Date.now() - 20_000), [{ destination: "c2.attacker.example", bytes: 5000 }]));
    expect(lateral.status).toBe(202);
    expect((await anomalies(b)).map((entry: { data: { kind: string } }) => entry.data.kind)).toEqual(["new-destination"]);
  });

  it("a destination a quorum of the fleet's devices was flagged for is learned by the fleet: a rollout flags three, not every device", async () => {
    const { register, post, anomalies } = await setup();
    const meters = [];
    for (const name of ["m1", "m2", "m3", "m4", "m5"]) {
      const id = await register(name);
      await teachBaseline(post, id);
      meters.push(id);
    }
    const kinds = async (id: string) => (await anomalies(id)).map((entry: { data: { kind: string } }) => entry.data.kind);
    for (const [index, id] of meters.entries()) {
      const answer = await post(flowReport(id, new Date(Date.now() - 30_000 + index), [{ destination: "updates-v2.example.com" }]));
      expect(answer.status, answer.text).toBe(202);
    }
    expect(await Promise.all(meters.map(kinds))).toEqual([["new-destination"], ["new-destination"], ["new-destination"], [], []]);
  });

  it("a late flow report known by source address is judged on the device that held the address then, not on its holder now", async () => {
    const { tenant, register, post } = await setup();
    const report = await simrootSource(runtime, tenant);
    const imsiOf = async (id: string) => (await tenant.call("GET", `/v1/devices/${id}`)).json.imsi as string;
    const a = await register("meter-a");
    const b = await register("meter-b");
    const address = "10.77.0.5";
    const at = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();
    // A held the address for two hours; then it detached and the pool gave the address to B.
    await report(coreFact("sim.attached", await imsiOf(a), { bearer: "cellular", ipv4: address }, at(4 * hour), "att-a"));
    await report(coreFact("sim.detached", await imsiOf(a), { bearer: "cellular" }, at(2 * hour), "det-a"));
    await report(coreFact("sim.attached", await imsiOf(b), { bearer: "cellular", ipv4: address }, at(hour), "att-b"));
    // The control plane itself says A held it three hours ago.
    const then = await tenant.call("GET", `/v1/devices/lookup?ip=${address}&at=${encodeURIComponent(at(3 * hour))}`);
    expect(then.json.id).toBe(a);
    // A PEP back from an outage flushes its backlog: a window of three hours ago, flows known only by source address.
    const late = flowReport("unused", new Date(Date.now() - 3 * hour), [{ destination: "a-only.example.com" }]);
    const flows = late.flows.map(({ deviceId: _, ...flow }) => ({ ...flow, sourceIp: address }));
    expect((await post({ ...late, flows })).status).toBe(202);
    const windows = async (id: string) => (await readBaseline(runtime.ports, tenant.tenant.id, id))?.windows ?? 0;
    // A's traffic taught A's baseline, and nothing of it B's.
    expect({ a: await windows(a), b: await windows(b) }).toEqual({ a: 1, b: 0 });
  });

  it("a flow known by an address that went from A to B and back to A within its window is neither device's", async () => {
    const { tenant, post, anomalies, report, imsiOf, a, b } = await twoMeters();
    const address = "10.77.0.9";
    const windowEnd = Date.now() - 30_000;
    const at = (msBeforeEnd: number) => new Date(windowEnd - msBeforeEnd).toISOString();
    // Within one five-minute window the pool gives the address to A, then B, then A again.
    await report(coreFact("sim.attached", await imsiOf(a), { bearer: "cellular", ipv4: address }, at(270_000), "att-a1"));
    await report(coreFact("sim.detached", await imsiOf(a), { bearer: "cellular" }, at(240_000), "det-a1"));
    await report(coreFact("sim.attached", await imsiOf(b), { bearer: "cellular", ipv4: address }, at(180_000), "att-b"));
    await report(coreFact("sim.detached", await imsiOf(b), { bearer: "cellular" }, at(120_000), "det-b"));
    await report(coreFact("sim.attached", await imsiOf(a), { bearer: "cellular", ipv4: address }, at(60_000), "att-a2"));
    // The control plane itself says B held it in the middle of the window.
    const middle = await tenant.call("GET", `/v1/devices/lookup?ip=${address}&at=${encodeURIComponent(at(150_000))}`);
    expect(middle.json.id).toBe(b);
    // The window's flows, known only by source address: B (compromised) reached its C2 host while it held the address.
    const answer = await postC2ByAddress(post, address, windowEnd);
    // A, warm, is not flagged for B's C2 host, nor taught it; and B is not taught A's traffic either.
    expect(answer.json.anomalies).toBe(0);
    const flowKinds = ["new-destination", "volume-spike", "denied-burst"];
    const kinds = (await anomalies(a)).map((entry: { data: { kind: string } }) => entry.data.kind);
    expect(kinds.filter((kind: string) => flowKinds.includes(kind))).toEqual([]);
    const baseline = await readBaseline(runtime.ports, tenant.tenant.id, a);
    expect(baseline?.windows).toBe(14);
    expect((await readBaseline(runtime.ports, tenant.tenant.id, b))?.windows ?? 0).toBe(0);
  });

  it("a device that flaps its session on its address all through a window is still judged on that window's flows", async () => {
    const { tenant, register, post, anomalies } = await setup();
    const report = await simrootSource(runtime, tenant);
    const a = await register("meter-a");
    const imsi = (await tenant.call("GET", `/v1/devices/${a}`)).json.imsi as string;
    await teachBaseline(post, a);
    const address = "10.77.0.10";
    const windowEnd = Date.now() - 30_000;
    const at = (msBeforeEnd: number) => new Date(windowEnd - msBeforeEnd).toISOString();
    // A (compromised) detaches and attaches again every 5 s, on the same address: more session edges than a window's
    // flows are checked against (a bounded read). No other device held the address.
    const facts = [];
    for (let n = 0; n < 55; n++) {
      facts.push(coreFact("sim.attached", imsi, { bearer: "cellular", ipv4: address }, at(290_000 - n * 5_000), `att-${n}`));
      facts.push(coreFact("sim.detached", imsi, { bearer: "cellular" }, at(287_500 - n * 5_000), `det-${n}`));
    }
    facts.push(coreFact("sim.attached", imsi, { bearer: "cellular", ipv4: address }, at(10_000), "att-last"));
    // Ten facts a webhook, as a core reports them while they happen.
    for (let n = 0; n < facts.length; n += 10) await report(...facts.slice(n, n + 10));
    await postC2ByAddress(post, address, windowEnd);
    // Its C2 host is still a new destination for it: flapping does not make its traffic no one device's.
    const kinds = (await anomalies(a)).map((entry: { data: { kind: string } }) => entry.data.kind);
    expect(kinds.filter((kind: string) => kind === "new-destination")).toEqual(["new-destination"]);
  });

  it("a device that flaps its session early in a window does not hide another device that held the address after it", async () => {
    const { tenant, post, anomalies, report, imsiOf, a, b } = await twoMeters();
    const address = "10.77.0.11";
    const windowEnd = Date.now() - 30_000;
    const at = (msBeforeEnd: number) => new Date(windowEnd - msBeforeEnd).toISOString();
    // A flaps on the address every 2 s for the window's first two minutes (110 edges), then B holds it, then A again.
    const [imsiA, imsiB] = [await imsiOf(a), await imsiOf(b)];
    const facts = [];
    for (let n = 0; n < 55; n++) {
      facts.push(coreFact("sim.attached", imsiA, { bearer: "cellular", ipv4: address }, at(290_000 - n * 2_000), `att-${n}`));
      facts.push(coreFact("sim.detached", imsiA, { bearer: "cellular" }, at(289_000 - n * 2_000), `det-${n}`));
    }
    facts.push(coreFact("sim.attached", imsiB, { bearer: "cellular", ipv4: address }, at(150_000), "att-b"));
    facts.push(coreFact("sim.detached", imsiB, { bearer: "cellular" }, at(120_000), "det-b"));
    facts.push(coreFact("sim.attached", imsiA, { bearer: "cellular", ipv4: address }, at(60_000), "att-a-last"));
    for (let n = 0; n < facts.length; n += 10) await report(...facts.slice(n, n + 10));
    const middle = await tenant.call("GET", `/v1/devices/lookup?ip=${address}&at=${encodeURIComponent(at(135_000))}`);
    expect(middle.json.id).toBe(b);
    // The window's flows, known only by source address: B's C2 traffic, while it held the address.
    const answer = await postC2ByAddress(post, address, windowEnd);
    // No one device's: A is neither flagged for B's traffic nor taught it.
    expect(answer.json.anomalies).toBe(0);
    const kinds = (await anomalies(a)).map((entry: { data: { kind: string } }) => entry.data.kind);
    expect(kinds.filter((kind: string) => kind === "new-destination")).toEqual([]);
    expect((await readBaseline(runtime.ports, tenant.tenant.id, a))?.windows).toBe(14);
  });

  it("a device relabelled into another fleet is judged against that fleet at once, not its old one", async () => {
    const { tenant, register, post, anomalies } = await setup();
    const a = await register("meter-a");
    await teachBaseline(post, a);
    // The cameras fleet (warm) uses cam-updates.example.com.
    const camera = await tenant.call("POST", "/v1/devices", { name: "cam", imsi: "234105559999001", labels: { fleet: "cameras" } });
    await teachBaseline(post, camera.json.id, "cam-updates.example.com");
    // An operator moves meter A into the cameras fleet (relabel, audited).
    const etag = (await tenant.call("GET", `/v1/devices/${a}`)).headers.get("etag")!;
    expect((await tenant.call("PATCH", `/v1/devices/${a}`, { labels: { fleet: "cameras" } }, { "if-match": etag })).status).toBe(200);
    // A now reaches what its (new) fleet uses: no anomaly, as for any device new to a destination its fleet knows.
    const answer = await post(flowReport(a, new Date(Date.now() - 20_000), [{ destination: "cam-updates.example.com" }]));
    expect(answer.status).toBe(202);
    expect((await anomalies(a)).map((entry: { data: { kind: string; evidence: { baseline: unknown } } }) => entry.data)).toEqual([]);
  });
});
