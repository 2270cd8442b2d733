/**
 * The segment's quorum counts distinct devices, each destination on its own (review 134: it counted flags, so one
 * device flagged three times for its C2 host taught it to the fleet; and one shared count, filled by one window of 256
 * new hosts, stopped the fleet learning any later rollout).
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { flowReport, teachBaseline } from "./support/flows.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

/** As baseline.ts `destinationKey` (port 443, tcp, as `flowReport` writes them). */
const keyOf = (destination: string) => createHash("sha256").update(`${destination}|443|tcp`).digest("base64url").slice(0, 12);

/** A tenant with a pep key to report flows with, and devices registered in one fleet. */
async function fleet(name: string) {
  const tenant = await tenantClient(runtime, name);
  const pep = (await tenant.call("POST", "/v1/keys", { name: "edge", role: "pep" })).json.token as string;
  const post = (report: unknown) => call(runtime, pep, "POST", "/v1/flows", report);
  const register = async (device: string, imsi: string) => {
    const answer = await tenant.call("POST", "/v1/devices", { name: device, imsi, labels: { fleet: "meters" } });
    expect(answer.status, answer.text).toBe(201);
    return answer.json.id as string;
  };
  return { tenant, post, register };
}

describe("a segment's quorum", { timeout: 120_000 }, () => {
  it("one compromised device flagged three times for its C2 host does not teach the host to its fleet", async () => {
    const { post, register } = await fleet("quorum-devices");
    const a = await register("meter-a", "234105551340001");
    const b = await register("meter-b", "234105551340002");
    await teachBaseline(post, a);
    await teachBaseline(post, b);
    const c2 = "c2.attacker.example";
    // 32 other hosts whose keys sort before the C2's: a device baseline keeps 32 destinations, so the C2 is the one
    // it forgets each window (what any device reaching more than 32 hosts a window, or over time, does).
    const decoys: string[] = [];
    for (let n = 0; decoys.length < 32; n++) if (keyOf(`cdn-${n}.example.net`) < keyOf(c2)) decoys.push(`cdn-${n}.example.net`);
    const flagged: number[] = [];
    for (let window = 0; window < 3; window++) {
      const answer = await post(
        flowReport(a, new Date(Date.now() - 50_000 + window * 10_000), [
          { destination: c2 },
          ...decoys.map((destination) => ({ destination })),
        ]),
      );
      expect(answer.status, answer.text).toBe(202);
      flagged.push(answer.json.anomalies);
    }
    // Each window flags the C2 host as new for meter A (a volume spike may come with it).
    expect(flagged.every((count) => count >= 1)).toBe(true);
    // The attacker moves to meter B and reaches the same host: one device of the fleet was ever flagged for it.
    const lateral = await post(flowReport(b, new Date(Date.now() - 5_000), [{ destination: c2 }]));
    expect(lateral.status).toBe(202);
    expect(lateral.json.anomalies, "meter B reaching the C2 host is a new destination for it and its segment").toBe(1);
  });
});

describe("a segment's quorum, bounded per destination", { timeout: 180_000 }, () => {
  it("one device's window of 256 new hosts does not stop its fleet learning every later rollout", async () => {
    const { post, register } = await fleet("quorum-devices-bound");
    const meters: string[] = [];
    for (let n = 0; n < 5; n++) {
      const id = await register(`m${n}`, `23410555135000${n}`);
      await teachBaseline(post, id);
      meters.push(id);
    }
    // Meter 0 (compromised, or a scanner) reaches 256 hosts new to it and to the fleet in one window.
    const scan = await post(
      flowReport(
        meters[0]!,
        new Date(Date.now() - 60_000),
        Array.from({ length: 256 }, (_, n) => ({ destination: `h${n}.scan.example` })),
      ),
    );
    expect(scan.status, scan.text).toBe(202);
    // Later, a rollout: meters 1 to 4 reach the new update host. Three are flagged, the fourth finds it known to the fleet.
    const flagged: number[] = [];
    for (const [index, id] of meters.slice(1).entries()) {
      const answer = await post(flowReport(id, new Date(Date.now() - 30_000 + index), [{ destination: "updates-v3.example.com" }]));
      expect(answer.status, answer.text).toBe(202);
      flagged.push(answer.json.anomalies);
    }
    expect(flagged).toEqual([1, 1, 1, 0]);
  });
});
