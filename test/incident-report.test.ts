/**
 * Review 125: an incident's report of a chatty device. The report read the device's records from 7 days before the
 * incident, oldest first, and stopped at 5,000: a device with more records in that week (one attach and detach every
 * four minutes) lost the incident's own records and the actions taken from its report and its NIS2 drafts.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { domainEvent } from "@simroot/core";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

it("reports the measures taken on a device that had more than 5,000 records in the week before its incident", async () => {
  const tenant = await tenantClient(runtime, "chatty");
  const device = (await tenant.call("POST", "/v1/devices", { imsi: "208015550000001" })).json as { id: string };
  // The device's chatter of the week before: 5,100 records (sessions opening and closing), committed 50 to a change.
  const ctx = { tenantId: tenant.tenant.id, actor: "source:src_core", requestId: "req_chatter" };
  for (let change = 0; change < 102; change++) {
    const events = Array.from({ length: 50 }, (_, n) =>
      domainEvent(
        ctx,
        n % 2 === 0 ? "device.seen" : "device.unseen",
        device.id,
        { bearer: "cellular", n: change * 50 + n },
        runtime.ports.now(),
      ),
    );
    await runtime.ports.ledger.commit({ tenantId: tenant.tenant.id, writes: [], events });
  }
  const opened = await tenant.call("POST", "/v1/incidents", { deviceId: device.id, severity: "high", summary: "exfiltration" });
  expect(opened.status).toBe(201);
  expect((await tenant.call("POST", `/v1/devices/${device.id}/quarantine`, { reason: "exfiltration" })).status).toBe(200);
  await runtime.settled();
  await runtime.history.caughtUp();

  const report = (await tenant.call("GET", `/v1/incidents/${opened.json.id}`)).json;
  const types = report.timeline.map((entry: { type: string }) => entry.type);
  expect(types).toContain("incident.opened");
  expect(report.actions.map((entry: { type: string }) => entry.type)).toContain("device.quarantined");
  const drafts = (await tenant.call("GET", `/v1/incidents/${opened.json.id}/nis2`)).json;
  expect(JSON.stringify(drafts.notification.measuresTaken)).toContain("device.quarantined");
}, 240_000);

it("a closed incident's report holds its closing record (the close is the last thing its timeline should show)", async () => {
  const tenant = await tenantClient(runtime, "closed");
  const device = (await tenant.call("POST", "/v1/devices", { imsi: "208015550000002" })).json as { id: string };
  const opened = (await tenant.call("POST", "/v1/incidents", { deviceId: device.id, severity: "low" })).json;
  expect((await tenant.call("POST", `/v1/incidents/${opened.id}/close`, { summary: "false positive" })).status).toBe(200);
  await runtime.settled();
  await runtime.history.caughtUp();
  const report = (await tenant.call("GET", `/v1/incidents/${opened.id}`)).json;
  expect(report.timeline.map((entry: { type: string }) => entry.type)).toEqual(["device.registered", "incident.opened", "incident.closed"]);
});
