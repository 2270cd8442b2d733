/**
 * A late attach does not take an address from the device holding it in a later session (review 95). An attach binds its
 * addresses whoever holds them: device A's attach with 10.79.0.9, an hour old and delivered late, took the address from
 * device B, which attached with it a minute ago, so B's traffic was decided under A's policy; A's detach then released
 * the address altogether while B still held it. A binding now keeps when its session began (`sessionAt`), and an attach
 * takes an address held by another device only when its own session began later.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coreFact, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let sequence = 0;
const base = Date.now();
const fact = (type: string, imsi: string, data: Record<string, unknown>, offsetMs: number) =>
  coreFact(type, imsi, data, new Date(base + offsetMs).toISOString(), `late-attach-${++sequence}`);

describe("a late attach (review 95)", () => {
  it("leaves an address to the device whose session with it began later, and its late detach releases nothing", async () => {
    const tenant = await tenantClient(runtime, "late-attach");
    const report = await simrootSource(runtime, tenant);
    const [a, b] = ["208017790000001", "208017790000002"];
    const idA = (await tenant.call("POST", "/v1/devices", { imsi: a })).json.id;
    const idB = (await tenant.call("POST", "/v1/devices", { imsi: b })).json.id;
    const holder = async () => {
      const answer = await tenant.call("GET", "/v1/devices/lookup?ip=10.79.0.9");
      return answer.status === 200 ? answer.json.id : answer.status;
    };
    await report(fact("sim.attached", b, { bearer: "cellular", ipv4: "10.79.0.9" }, -60_000));
    expect(await holder()).toBe(idB);
    await report(fact("sim.attached", a, { bearer: "cellular", ipv4: "10.79.0.9" }, -3_600_000));
    expect(await holder()).toBe(idB);
    await report(fact("sim.detached", a, { bearer: "cellular" }, -3_000_000));
    expect(await holder()).toBe(idB);
    // A later session of A with the address (B's not reported ended) takes it, as before.
    await report(fact("sim.attached", a, { bearer: "cellular", ipv4: "10.79.0.9" }, -1_000));
    expect(await holder()).toBe(idA);
  });
});
