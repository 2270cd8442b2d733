/**
 * Review 125: an incident's report of a chatty device. The report read the device's records from 7 days before the
 * incident, oldest first, and stopped at 5,000: a device with more records in that week (one attach and detach every
 * four minutes) lost the incident's own records and the actions taken from its report and its NIS2 drafts.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { domainEvent, getIncident, incidentRecords } from "@simroot/core";
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

it("keeps the measures, the anomalies and the close of a span past its bound, and counts what it left out", async () => {
  const tenant = await tenantClient(runtime, "long-span");
  const device = (await tenant.call("POST", "/v1/devices", { imsi: "208015550000003" })).json as { id: string };
  const ctx = { tenantId: tenant.tenant.id, actor: "source:src_core", requestId: "req_span" };
  const chatter = async (changes: number) => {
    for (let change = 0; change < changes; change++) {
      const events = Array.from({ length: 50 }, (_, n) =>
        domainEvent(ctx, n % 2 === 0 ? "device.seen" : "device.unseen", device.id, { bearer: "cellular", n }, runtime.ports.now()),
      );
      await runtime.ports.ledger.commit({ tenantId: tenant.tenant.id, writes: [], events });
    }
  };
  const opened = (await tenant.call("POST", "/v1/incidents", { deviceId: device.id, severity: "high", summary: "beaconing" })).json;
  await chatter(6);
  const anomaly = domainEvent(ctx, "anomaly.detected", device.id, { kind: "new-destination", deviceId: device.id }, runtime.ports.now());
  await runtime.ports.ledger.commit({ tenantId: tenant.tenant.id, writes: [], events: [anomaly] });
  await chatter(6);
  expect((await tenant.call("POST", `/v1/devices/${device.id}/quarantine`, { reason: "beaconing" })).status).toBe(200);
  await chatter(6);
  expect((await tenant.call("POST", `/v1/incidents/${opened.id}/close`, { summary: "contained" })).status).toBe(200);
  await runtime.settled();
  await runtime.history.caughtUp();

  const incident = await getIncident(runtime.ports, ctx, { id: opened.id });
  // 900 records of chatter in the span, read 80 at a time: the oldest 100 and the newest 50 of them are kept.
  const bounds = { notableRecords: 100, headRecords: 100, tailRecords: 50, pages: 1_000, pageSize: 80 };
  const { records, omitted } = await incidentRecords(runtime.ports, ctx, incident, bounds);
  const span = records.filter((record) => record.time >= incident.openedAt);
  const types = span.map((record) => record.action);
  expect(types[0]).toBe("incident.opened");
  expect(types).toContain("anomaly.detected");
  expect(types).toContain("device.quarantined");
  expect(types.at(-1)).toBe("incident.closed");
  expect(types.filter((type) => type === "device.seen" || type === "device.unseen")).toHaveLength(150);
  expect(omitted).toBe(750);
  // In the order they were recorded.
  const times = span.map((record) => record.time);
  expect([...times].sort()).toEqual(times);

  // Past the pages it may read (160 records, before the anomaly), a closed incident's close is still read, and something
  // is said to be left out.
  const cut = await incidentRecords(runtime.ports, ctx, incident, { ...bounds, pages: 2 });
  expect(cut.records.at(-1)?.action).toBe("incident.closed");
  expect(cut.records.map((record) => record.action)).not.toContain("anomaly.detected");
  expect(cut.omitted).toBeGreaterThan(0);

  // The API's report says how many it left out (none at its own bounds).
  expect((await tenant.call("GET", `/v1/incidents/${opened.id}`)).json.omitted).toBe(0);
}, 120_000);
