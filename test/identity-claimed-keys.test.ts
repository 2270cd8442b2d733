/**
 * A source's dedupe key names one event (review 95). A fact whose key the device's window already knew was a duplicate,
 * whatever it said: a fact posted first under the key an operator's next report would carry (Data Streamer record ids
 * are sequential) made that report, a revocation, a duplicate, dropped unrecorded. A known key with other content is
 * now a fact of its own (its key made distinct by its content), applied as any other, so the report is not lost.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coreFact, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const base = Date.now();
const fact = (type: string, imsi: string, data: Record<string, unknown>, offsetMs: number, dedupeKey: string) =>
  coreFact(type, imsi, data, new Date(base + offsetMs).toISOString(), dedupeKey);

describe("a dedupe key claimed first (review 95)", () => {
  it("does not make the report that carries it a duplicate; a true redelivery still is", async () => {
    const tenant = await tenantClient(runtime, "claimed-keys");
    const report = await simrootSource(runtime, tenant);
    const imsi = "208017800000001";
    const id = (await tenant.call("POST", "/v1/devices", { imsi })).json.id;
    await report(fact("device.reachability-changed", imsi, { reachable: true }, 0, "rec-1001"));
    const revocation = fact("device.revoked", imsi, { reason: "SIM deletion" }, 1_000, "rec-1001");
    await report(revocation);
    expect((await tenant.call("GET", `/v1/devices/${id}`)).json.state).toBe("revoked");
    const audit = async () =>
      (await tenant.call("GET", `/v1/audit?subject=${id}&limit=200`)).json.items.map((record: { action: string }) => record.action);
    expect((await audit()).filter((action: string) => action === "device.revoked")).toHaveLength(1);
    // The same report again changes nothing more.
    await report(revocation);
    expect((await audit()).filter((action: string) => action === "device.revoked")).toHaveLength(1);
  });
});
