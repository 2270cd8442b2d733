/**
 * SIEM export in OCSF: every shape simroot emits validates against the OCSF class it claims
 * (required attributes, types, enums, constraints, resolved through base_event, the
 * dictionary and the objects); the validator itself catches what it should; the API serves
 * JSON Lines and the stream reaches an HTTPS collector.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportEventToSiem, flowReportSchema, ocsfFromEvent, ocsfFromFlow, recordFlows } from "@simroot/core";
import { startHttpCollector, type HttpCollector } from "../../packages/core/src/integration/http-collector.test-support.ts";
import { sampleEvents, sampleFlowReport, sampleOcsfEvents } from "../../packages/core/src/integration/ocsf/ocsf-samples.test-support.ts";
import { ocsfSchema } from "../../packages/core/src/integration/ocsf/ocsf-schema.test-support.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "../support/runtime.ts";

const schema = ocsfSchema();
let runtime: TestRuntime;
let siem: HttpCollector;
beforeAll(async () => {
  siem = await startHttpCollector((request) => ({ status: request.headers.authorization === "Bearer siem-token" ? 202 : 403 }));
  runtime = await startTestRuntime();
});
afterAll(async () => {
  await Promise.all([runtime.stop(), siem.close()]);
});

describe("OCSF events", () => {
  it.each(
    sampleOcsfEvents().map((event) => [
      `${event.class_uid}/${event.activity_id} ${(event.metadata as { event_code?: string }).event_code ?? "flow"}`,
      event,
    ]),
  )("%s conforms to its class", (_, event) => {
    expect(schema.validate(event)).toEqual([]);
  });

  it("maps each kind of record to the class that fits it", () => {
    const byType = Object.fromEntries(sampleEvents.map((event) => [event.type, ocsfFromEvent(event).class_uid]));
    expect(byType).toMatchObject({
      "device.registered": 3004,
      "device.quarantined": 3004,
      "device.equipment-changed": 2004,
      "anomaly.detected": 2004,
      "incident.opened": 2005,
      "incident.resolved": 2005,
    });
    expect(
      sampleOcsfEvents()
        .filter((event) => event.class_uid === 4001)
        .map((event) => event.activity_name),
    ).toEqual(["Traffic", "Refuse"]);
  });

  it("the validator catches a missing required attribute, a value outside its enum, a wrong type, an unknown attribute", () => {
    const [registered] = sampleOcsfEvents();
    const finding = sampleOcsfEvents().find((event) => event.class_uid === 2004)!;
    const { finding_info: _, ...noFinding } = finding;
    expect(schema.validate(noFinding as typeof finding)).toContain("finding_info is required");
    expect(schema.validate({ ...registered!, activity_id: 42, type_uid: 300442 })).toEqual([
      expect.stringMatching(/^activity_id = 42 is not in its enum \(/),
    ]);
    expect(schema.validate({ ...registered!, time: "2026-12-02T05:00:00Z" })).toContain("time is not an integer");
    expect(schema.validate({ ...registered!, colour: "blue" })).toContain("colour is not an attribute of entity_management");
    expect(schema.validate({ ...registered!, type_uid: 300403 })).toContain(
      "type_uid 300403 is not class_uid * 100 + activity_id (300401)",
    );
    expect(schema.validate({ ...registered!, device: { uid: "dev_1" } })).toContain("device.type_id is required");
    expect(schema.validate({ ...registered!, entity: { type: "Device" } })).toEqual([
      expect.stringContaining("needs at least one of name, uid"),
    ]);
    expect(schema.validate({ ...registered!, metadata: { product: { name: "simroot" } } })).toContain("metadata.version is required");
  });
});

describe("OCSF Network Activity of a flow whose source the PEP did not know (review 133)", () => {
  // The flow report schema accepts both: the record had `src_endpoint.ip: "unknown"` (no ip_t), or an endpoint with no
  // identifying attribute (network_endpoint's at-least-one constraint), and a strict SIEM refused it.
  const { sourceIp: _, ...anonymous } = sampleFlowReport.flows[1]!;
  it.each([
    ["with sourceIp 'unknown'", { ...sampleFlowReport.flows[1]!, sourceIp: "unknown" as const }],
    ["with neither deviceId nor sourceIp", anonymous],
  ])("maps a flow %s to a valid event", (_name, flow) => {
    const { pepId, windowStart, windowEnd } = sampleFlowReport;
    expect(flowReportSchema.safeParse({ pepId, windowStart, windowEnd, flows: [flow] }).success).toBe(true);
    const event = ocsfFromFlow(sampleFlowReport, flow, 0);
    expect(schema.validate(event)).toEqual([]);
    expect(JSON.stringify(event)).not.toContain('"ip":"unknown"');
  });
});

describe("OCSF out of simroot", () => {
  it("serves the audit trail and the flow reports as JSON Lines of valid OCSF events", async () => {
    const acme = await tenantClient(runtime);
    const device = (await acme.call("POST", "/v1/devices", { imsi: "208011234567810", labels: { fleet: "meters" } })).json;
    await acme.call("POST", `/v1/devices/${device.id}/quarantine`, { reason: "IMEI changed" });
    const audit = await acme.call("GET", "/v1/ocsf/events");
    expect(audit.status).toBe(200);
    expect(audit.headers.get("content-type")).toContain("application/x-ndjson");
    const events = audit.text
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    // The tenant's own creation is audited first (issue 11), then the device's changes.
    expect(events.map((event) => [event.class_uid, event.activity_name, event.entity.uid])).toEqual([
      [3004, "Create", acme.tenant.id],
      [3004, "Create", device.id],
      [3004, "Disable", device.id],
    ]);
    for (const event of events) expect(schema.validate(event)).toEqual([]);

    const ctx = { tenantId: acme.tenant.id, actor: "pep:lyon", requestId: "req_flows" };
    const { tenantId: _, id: __, ...sample } = sampleFlowReport;
    // Flows of the tenant's own device (one of another tenant's would not be kept).
    const report = { ...sample, flows: sample.flows.map((flow) => (flow.deviceId ? { ...flow, deviceId: device.id } : flow)) };
    await recordFlows(runtime.ports, ctx, report);
    const flows = await acme.call(
      "GET",
      `/v1/ocsf/events?kind=flows&from=${sampleFlowReport.windowStart}&to=${sampleFlowReport.windowEnd}`,
    );
    const lines = flows.text
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines.map((event) => [event.class_uid, event.action, event.dst_endpoint.port])).toEqual([
      [4001, "Allowed", 8883],
      [4001, "Denied", 53],
    ]);
    for (const event of lines) expect(schema.validate(event)).toEqual([]);
  });

  it("rejects a flows export without a window, with problem+json", async () => {
    const acme = await tenantClient(runtime);
    const bad = await acme.call("GET", "/v1/ocsf/events?kind=flows");
    expect(bad.status).toBe(400);
    expect(bad.json.errors.map((error: { path: string }) => error.path)).toEqual(["from"]);
  });

  it("refuses a reversed window (400), and reads a window given in another offset as the same instants (review 92)", async () => {
    const acme = await tenantClient(runtime);
    const device = (await acme.call("POST", "/v1/devices", { imsi: "208011234567811" })).json;
    const { tenantId: _, id: __, ...sample } = sampleFlowReport;
    const report = { ...sample, flows: sample.flows.map((flow) => (flow.deviceId ? { ...flow, deviceId: device.id } : flow)) };
    await recordFlows(runtime.ports, { tenantId: acme.tenant.id, actor: "pep:lyon", requestId: "req_offsets" }, report);
    const window = (from: string, to: string) =>
      acme.call("GET", `/v1/ocsf/events?kind=flows&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
    // It answered 200 with nothing: the store refused the reversed range, and the stream ended as if it had no more.
    const reversed = await window(sample.windowEnd, sample.windowStart);
    expect([reversed.status, reversed.json?.errors?.[0]?.path]).toEqual([400, "to"]);
    // An empty window (a poller's next one before time moved) is answered empty, as before (review 94).
    const empty = await window(sample.windowStart, sample.windowStart);
    expect([empty.status, empty.text]).toEqual([200, ""]);
    // The same window two hours east: compared as text with the reports' UTC keys, it found none.
    const east = (iso: string) => {
      const shifted = new Date(Date.parse(iso) + 2 * 3_600_000).toISOString();
      return `${shifted.slice(0, 19)}+02:00`;
    };
    const utc = await window(sample.windowStart, sample.windowEnd);
    const shifted = await window(east(sample.windowStart), east(sample.windowEnd));
    expect(utc.text.trim().split("\n")).toHaveLength(2);
    expect(shifted.text).toBe(utc.text);
  });

  it("exports a flow report whose window is stated in another offset in the window it ended in (review 125)", async () => {
    // RFC 3339 allows an offset and the schema takes it; the report was stored under its text, day and sort key as
    // written, and the export, which reads UTC days and bounds, left it out.
    const acme = await tenantClient(runtime);
    const device = (await acme.call("POST", "/v1/devices", { imsi: "208011234567899" })).json;
    const { tenantId: _, id: __, ...sample } = sampleFlowReport;
    const flows = sample.flows.map((flow) => (flow.deviceId ? { ...flow, deviceId: device.id } : flow));
    const ctx = { tenantId: acme.tenant.id, actor: "pep:lyon", requestId: "req_offset_report" };
    // 04:59 to 05:00 UTC, stated in Lyon's winter time and by a PEP in New York: the same instants.
    await recordFlows(runtime.ports, ctx, {
      ...sample,
      windowStart: "2026-12-02T05:59:00+01:00",
      windowEnd: "2026-12-02T06:00:00+01:00",
      flows,
    });
    // Another PEP's (the same report sent again is stored once).
    await recordFlows(runtime.ports, ctx, {
      ...sample,
      pepId: "pep-new-york",
      windowStart: "2026-12-01T23:59:00-05:00",
      windowEnd: "2026-12-02T00:00:00-05:00",
      flows,
    });
    const exported = await acme.call(
      "GET",
      `/v1/ocsf/events?kind=flows&from=${encodeURIComponent("2026-12-02T04:30:00Z")}&to=${encodeURIComponent("2026-12-02T05:30:00Z")}`,
    );
    expect(exported.status).toBe(200);
    // Two reports of two flows each, both ended at 05:00 UTC.
    expect(exported.text.split("\n").filter(Boolean)).toHaveLength(4);
  });

  it("orders a report's window by its instants, however its offsets and fractions of a second are written (review 127)", async () => {
    // The schema compared the window's text: a window across the end of summer time was refused, a reversed one was
    // stored (and exported with a negative duration), and a half-second window stated once without fractions refused.
    const acme = await tenantClient(runtime);
    const device = (await acme.call("POST", "/v1/devices", { imsi: "208011234512701" })).json;
    const { tenantId: _, id: __, ...sample } = sampleFlowReport;
    const flows = sample.flows.map((flow) => (flow.deviceId ? { ...flow, deviceId: device.id } : flow));
    const ctx = { tenantId: acme.tenant.id, actor: "pep:lyon", requestId: "req_window_order" };
    const report = (windowStart: string, windowEnd: string) =>
      recordFlows(runtime.ports, ctx, { ...sample, windowStart, windowEnd, flows }).then(
        (answer) => answer.flows,
        (error: { code?: string }) => error.code,
      );
    // Paris, 25 October 2026: 02:59 CEST is 00:59Z, then the clocks go back and 02:00 CET is 01:00Z.
    expect(await report("2026-10-25T02:59:00+02:00", "2026-10-25T02:00:00+01:00")).toBe(2);
    // 01:30Z to 00:45Z: reversed, though "02:30" sorts before "02:45".
    expect(await report("2026-10-25T02:30:00+01:00", "2026-10-25T02:45:00+02:00")).toBe("request.invalid");
    // 05:00:00.000Z to 05:00:00.500Z: "...00Z" sorts after "...00.500Z" as text.
    expect(await report("2026-12-02T05:00:00Z", "2026-12-02T05:00:00.500Z")).toBe(2);
    const exported = await acme.call(
      "GET",
      `/v1/ocsf/events?kind=flows&from=${encodeURIComponent("2026-10-25T00:00:00Z")}&to=${encodeURIComponent("2026-10-25T02:00:00Z")}`,
    );
    const durations = exported.text
      .split("\n")
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { duration: number }).duration);
    expect(durations).toEqual([60_000, 60_000]);
  });

  it("cuts an export off, never ends it as complete, when the store fails partway (review 92)", async () => {
    // Served over HTTP, as a SIEM or an archive reads it.
    const served = await startTestRuntime({ port: 0 });
    const acme = await tenantClient(served);
    for (const imsi of ["208011234567812", "208011234567813"]) await acme.call("POST", "/v1/devices", { imsi });
    await served.settled();
    let queries = 0;
    let failing = true;
    served.ports.db.middlewareStack.add(
      (next, context) => async (args) => {
        const command = (context as { commandName?: string }).commandName;
        const table = (args.input as { TableName?: string }).TableName ?? "";
        if (failing && command === "QueryCommand" && table === served.ports.tables.audit && ++queries === 2)
          throw Object.assign(new Error("Internal server error"), { name: "InternalServerError", $metadata: { httpStatusCode: 500 } });
        return next(args);
      },
      { step: "initialize", name: "failSecondAuditQuery" },
    );
    try {
      for (const path of ["/v1/ocsf/events", "/v1/audit/export"]) {
        queries = 0;
        const answer = await fetch(`${served.url}${path}`, { headers: { authorization: `Bearer ${acme.token}` } });
        // Answered 200 (the first page was on its way) and then ended cleanly: a SIEM or an archive took a part for the whole.
        const read =
          answer.status === 200
            ? await answer.text().then(
                () => "complete",
                () => "cut off",
              )
            : answer.status;
        expect([path, read]).toEqual([path, "cut off"]);
      }
    } finally {
      failing = false;
      served.ports.db.middlewareStack.remove("failSecondAuditQuery");
    }
    // Whole again once the store is.
    const whole = await fetch(`${served.url}/v1/audit/export`, { headers: { authorization: `Bearer ${acme.token}` } });
    expect([whole.status, (await whole.text()).trim().split("\n").length]).toEqual([200, 3]);
    await served.stop();
  });

  it("streams each event to the SIEM's HTTPS collector as an OCSF JSON line, and fails when the collector refuses", async () => {
    const settings = { tenantId: sampleEvents[0]!.tenantId, url: `${siem.url}/services/collector/ocsf`, token: "siem-token" };
    expect(await exportEventToSiem(settings, sampleEvents[6]!)).toBe(true);
    const received = siem.requests.at(-1)!;
    expect(received.headers["content-type"]).toBe("application/x-ndjson");
    const event = JSON.parse(received.body.trim());
    expect(event).toMatchObject({ class_uid: 2004, metadata: { uid: sampleEvents[6]!.id } });
    expect(schema.validate(event)).toEqual([]);
    await expect(exportEventToSiem({ ...settings, token: "wrong" }, sampleEvents[0]!)).rejects.toMatchObject({
      code: "integration.siem_failed",
    });
    expect(await exportEventToSiem({ ...settings, tenantId: "ten_other" }, sampleEvents[0]!)).toBe(false);
  });
});
