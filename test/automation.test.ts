/**
 * Continuous verification end to end: a flow report shows an anomaly, the detector records
 * it (audited), a tenant's automation rule quarantines the device, the feed tells enforcement
 * points, and every action names the rule. Dry-run, rate limits and loop protection.
 */
import { GetCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { documentClient, portsFor, runAutomation, takeRate, type BusEnvelope } from "@simroot/core";
import { recordCacheMs } from "@simroot/core/automation/records";
import { eventOfRecord, type AuditRecord } from "@simroot/core/ledger/audit-record";
import type { ResponseData, Schema } from "@simroot/sdk";
import { call, coreFact, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { flowReport, teachBaseline } from "./support/flows.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let meters = 0;
async function setup(rules: unknown[]) {
  const tenant = await tenantClient(runtime, `cv-${meters}`);
  const pep = (await tenant.call("POST", "/v1/keys", { name: "edge", role: "pep" })).json.token as string;
  const device = await tenant.call("POST", "/v1/devices", {
    name: "meter",
    imsi: `23410000000${String(++meters).padStart(4, "0")}`,
    labels: { fleet: "meters" },
  });
  expect(device.status).toBe(201);
  const created = [];
  for (const rule of rules) {
    const answer = await tenant.call("POST", "/v1/automation/rules", rule);
    expect(answer.status, answer.text).toBe(201);
    created.push(answer.json);
  }
  const post = (report: unknown) => call(runtime, pep, "POST", "/v1/flows", report);
  return { tenant, pep, deviceId: device.json.id as string, rules: created, post };
}

/** A `device.labels_changed` event of the device, as the bus delivers it to the automation consumer. */
const labelsChanged = (tenantId: string, deviceId: string, id: string, time: Date) =>
  ({
    source: "simroot",
    "detail-type": "device.labels_changed",
    detail: {
      id,
      type: "device.labels_changed",
      tenantId,
      subject: deviceId,
      time: time.toISOString(),
      actor: "test",
      requestId: "req_1",
      data: {},
    },
  }) as unknown as BusEnvelope;

const onNewDestination = { source: ["simroot"], "detail-type": ["anomaly.detected"], detail: { data: { kind: ["new-destination"] } } };
const audit = async (tenant: Awaited<ReturnType<typeof tenantClient>>, subject: string) =>
  (await tenant.call("GET", `/v1/audit?subject=${subject}&limit=1000`)).json.items as Schema<"AuditRecord">[];

// Each story teaches a baseline through the API first (14 reports): generous on a shared machine.
describe("detection -> anomaly -> rule -> quarantine -> enforcement points", { timeout: 180_000 }, () => {
  it("quarantines a device that reaches a destination never seen for it or its fleet, audited with the rule's name", async () => {
    const { tenant, deviceId, rules, post, pep } = await setup([
      { name: "contain unknown destinations", pattern: onNewDestination, actions: [{ type: "quarantine" }, { type: "open-incident" }] },
      // A dry run beside it: what it would have done is no measure taken (review 55: NIS2 drafts listed it).
      { name: "would revoke", pattern: onNewDestination, actions: [{ type: "revoke" }], dryRun: true },
    ]);
    await teachBaseline(post, deviceId);
    const { version } = (await call(runtime, pep, "GET", "/v1/feed")).json.signed.head;

    const usual = await post(flowReport(deviceId, new Date(), [{ destination: "telemetry.example.com" }]));
    expect(usual.json.anomalies).toBe(0);
    const odd = await post(flowReport(deviceId, new Date(), [{ destination: "exfil.example.net", bytes: 5000 }]));
    expect(odd.status).toBe(202);
    expect(odd.json.anomalies).toBe(1);
    await runtime.settled();

    const device = await tenant.call("GET", `/v1/devices/${deviceId}`);
    expect(device.json.state).toBe("quarantined");
    const records = await audit(tenant, deviceId);
    const anomaly = records.find((record) => record.action === "anomaly.detected")!;
    expect(anomaly.actor).toBe("system:detectors");
    expect(anomaly.data).toMatchObject({
      kind: "new-destination",
      evidence: {
        seen: { destinations: ["exfil.example.net:443/tcp"] },
        baseline: { knownDestinations: 1 },
        flows: [{ destination: "exfil.example.net", pepId: "pep-lyon-1" }],
      },
    });
    const quarantined = records.find((record) => record.action === "device.quarantined")!;
    expect(quarantined.actor).toBe(`rule:${rules[0].id}`);
    const fired = records.find((record) => record.action === "automation.fired")!;
    expect(fired.data).toMatchObject({
      ruleId: rules[0].id,
      outcome: "fired",
      actions: [
        { type: "quarantine", outcome: "done" },
        { type: "open-incident", outcome: "done" },
      ],
    });

    // What enforcement points learn: the device, quarantined, in the feed after the version they held.
    const deltas = await call(runtime, pep, "GET", `/v1/feed?since=${version}`);
    const entries = deltas.json.entries as Schema<"FeedEntry">[];
    expect(entries).toContainEqual(
      expect.objectContaining({ kind: "device", key: deviceId, value: expect.objectContaining({ state: "quarantined" }) }),
    );

    // The incident gathered the anomaly and the actions; its NIS2 drafts are due 24 h and 72 h after.
    const incidents = (await tenant.call("GET", "/v1/incidents")).json.items;
    expect(incidents).toHaveLength(1);
    const report = (await tenant.call("GET", `/v1/incidents/${incidents[0].id}`)).json as ResponseData<"/v1/incidents/{id}", "get">;
    expect(report.anomalies.map((entry) => entry.data.kind)).toEqual(["new-destination"]);
    expect(report.actions.map((entry) => entry.type)).toEqual(expect.arrayContaining(["device.quarantined", "automation.fired"]));
    const drafts = (await tenant.call("GET", `/v1/incidents/${incidents[0].id}/nis2`)).json;
    expect(Date.parse(drafts.earlyWarning.dueBy) - Date.parse(incidents[0].openedAt)).toBe(24 * 3600 * 1000);
    expect(Date.parse(drafts.notification.dueBy) - Date.parse(incidents[0].openedAt)).toBe(72 * 3600 * 1000);
    expect(drafts.earlyWarning.suspectedUnlawfulOrMalicious).toBe(true);
    expect(drafts.notification.indicatorsOfCompromise[0].seen.destinations).toEqual(["exfil.example.net:443/tcp"]);
    const measures = JSON.stringify(drafts.notification.measuresTaken);
    expect([measures.includes("quarantine"), measures.includes("revoke"), measures.includes("would-do")]).toEqual([true, false, false]);
    expect(report.actions.some((entry) => JSON.stringify(entry.data).includes("would-do"))).toBe(false);

    // Every event this story caused is documented in the AsyncAPI catalogue rules match against.
    const messages: Record<string, { name: string }> = (await call(runtime, undefined, "GET", "/asyncapi.json")).json.components.messages;
    const documented = new Set(Object.values(messages).map((message) => message.name));
    for (const type of new Set(records.map((record) => record.action))) expect(documented, type).toContain(type);
  });

  it("a destination the fleet already uses is not an anomaly for a device new to it", async () => {
    const { deviceId, post, tenant } = await setup([]);
    await teachBaseline(post, deviceId);
    const other = await tenant.call("POST", "/v1/devices", { name: "meter-b", imsi: "234109999999991", labels: { fleet: "meters" } });
    await teachBaseline(post, other.json.id, "updates.example.com");
    const answer = await post(flowReport(deviceId, new Date(), [{ destination: "updates.example.com" }]));
    expect(answer.json.anomalies).toBe(0);
  });

  it("dry-run records what it would have done and does nothing", async () => {
    const { tenant, deviceId, post } = await setup([
      { name: "try it", pattern: onNewDestination, actions: [{ type: "revoke" }], dryRun: true },
    ]);
    await teachBaseline(post, deviceId);
    await post(flowReport(deviceId, new Date(), [{ destination: "exfil.example.net" }]));
    await runtime.settled();
    expect((await tenant.call("GET", `/v1/devices/${deviceId}`)).json.state).toBe("active");
    const fired = (await audit(tenant, deviceId)).filter((record) => record.action === "automation.fired");
    expect(fired).toHaveLength(1);
    expect(fired[0]!.data).toMatchObject({ outcome: "dry-run", actions: [{ type: "revoke", outcome: "would-do" }] });
  });

  it("stops writing a rule's rate counter once its window is spent, and counts again once its limit is raised or the window turns", async () => {
    // The counter is one item: refused writes cost write units on it too, and a storm of matches would throttle it.
    let writes = 0;
    const db = {
      send: (command: { constructor: { name: string } }) => {
        if (command.constructor.name === "UpdateCommand") writes++;
        return runtime.ports.db.send(command as never);
      },
    } as unknown as typeof runtime.ports.db;
    let now = Date.UTC(2026, 11, 3, 10, 0, 0);
    const ports = portsFor(db, runtime.ports.tables, runtime.bus, () => new Date(now));
    const taken = [];
    for (let match = 0; match < 10; match++) taken.push(await takeRate(ports, "ten_rate_storm", "rule#storm", 2, 60));
    expect(taken).toEqual([true, true, false, false, false, false, false, false, false, false]);
    expect(writes).toBe(3); // two counted, one refused: the instance remembers the window is spent
    // The rule's limit raised within the window: it counts against the new limit at once.
    expect(await takeRate(ports, "ten_rate_storm", "rule#storm", 3, 60)).toBe(true);
    expect(writes).toBe(4);
    now += 60_000;
    expect(await takeRate(ports, "ten_rate_storm", "rule#storm", 3, 60)).toBe(true);
    expect(writes).toBe(5);
  });

  it("rate limits a rule across its matches", async () => {
    const { tenant, deviceId, post } = await setup([
      {
        name: "label",
        pattern: onNewDestination,
        actions: [{ type: "add-labels", labels: { suspect: "yes" } }],
        rateLimit: { max: 1, perSeconds: 3600 },
      },
    ]);
    await teachBaseline(post, deviceId);
    await post(flowReport(deviceId, new Date(), [{ destination: "a.example.net" }]));
    await runtime.settled();
    await post(flowReport(deviceId, new Date(), [{ destination: "b.example.net" }]));
    await runtime.settled();
    const outcomes = (await audit(tenant, deviceId))
      .filter((record) => record.action === "automation.fired")
      .map((record) => record.data.outcome);
    expect(outcomes).toEqual(["fired", "rate-limited"]);
  });

  it("an action's own events do not retrigger the rule that caused them, nor a chain of rules", async () => {
    const onUpdate = { source: ["simroot"], "detail-type": ["device.updated"] };
    const { tenant, deviceId } = await setup([
      {
        name: "ping",
        pattern: onUpdate,
        actions: [{ type: "add-labels", labels: { ping: "1" } }],
        rateLimit: { max: 100, perSeconds: 60 },
      },
      { name: "pong", pattern: onUpdate, actions: [{ type: "remove-labels", keys: ["ping"] }], rateLimit: { max: 100, perSeconds: 60 } },
    ]);
    const device = await tenant.call("GET", `/v1/devices/${deviceId}`);
    await tenant.call("PATCH", `/v1/devices/${deviceId}`, { name: "renamed" }, { "if-match": device.headers.get("etag")! });
    await runtime.settled();
    const fired = (await audit(tenant, deviceId)).filter((record) => record.action === "automation.fired");
    // Each rule fires on the person's change, and on the other rule's change when it made one (how the two interleave
    // decides whether both did: events are published from the stream as soon as they commit); once the chain names
    // both rules, it stops. No rule ever fires on a chain that already names it.
    const chains = fired.map((record) => record.actor.replace(/^rule:/, "").split(">"));
    expect(fired.length).toBeGreaterThanOrEqual(3);
    expect(fired.length).toBeLessThanOrEqual(4);
    expect(chains.filter((chain) => chain.length === 1)).toHaveLength(2);
    expect(chains.some((chain) => chain.length === 2)).toBe(true);
    for (const chain of chains) expect(new Set(chain).size).toBe(chain.length);
  });

  it("changes only what a PATCH names: a dry-run rule stays dry-run, a disabled one disabled, its rate limit as set", async () => {
    const { tenant } = await setup([]);
    const created = await tenant.call("POST", "/v1/automation/rules", {
      name: "revoke on unknown destinations (dry run)",
      pattern: onNewDestination,
      actions: [{ type: "revoke" }],
      dryRun: true,
      enabled: false,
      rateLimit: { max: 3, perSeconds: 3600 },
    });
    expect(created.status, created.text).toBe(201);
    const path = `/v1/automation/rules/${created.json.id}`;
    const raised = await tenant.call("PATCH", path, { rateLimit: { max: 5, perSeconds: 3600 } }, { "if-match": '"1"' });
    expect(raised.status, raised.text).toBe(200);
    // Defaults are for a new rule: a change that does not name dryRun must not make a dry run act for real.
    expect(raised.json).toMatchObject({ dryRun: true, enabled: false, rateLimit: { max: 5, perSeconds: 3600 } });
    const renamed = await tenant.call("PATCH", path, { name: "renamed" }, { "if-match": '"2"' });
    expect(renamed.json).toMatchObject({ name: "renamed", dryRun: true, enabled: false, rateLimit: { max: 5, perSeconds: 3600 } });
    expect((await tenant.call("GET", path)).json).toMatchObject({ dryRun: true, enabled: false, rateLimit: { max: 5 } });
  });

  it("refuses a rule whose pattern is not an EventBridge pattern, with problem+json, and creates nothing", async () => {
    const { tenant } = await setup([]);
    const bad = await tenant.call("POST", "/v1/automation/rules", {
      name: "bad",
      pattern: { source: "simroot" },
      actions: [{ type: "quarantine" }],
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toContain("application/problem+json");
    expect(bad.json.errors[0].path).toBe("pattern");
    expect((await tenant.call("GET", "/v1/automation/rules")).json.items).toEqual([]);
    // A notify action naming a webhook this tenant does not have could only ever skip (review 55: it was taken).
    const nowhere = await tenant.call("POST", "/v1/automation/rules", {
      name: "tell nobody",
      pattern: onNewDestination,
      actions: [{ type: "notify", webhookId: "whk_nope" }],
    });
    expect([nowhere.status, nowhere.json.errors?.[0]?.path]).toEqual([400, "actions.0.webhookId"]);
    // Raw ingested facts (source simroot.ingest) never reach a rule: such a pattern could never fire (review 55).
    const raw = await tenant.call("POST", "/v1/automation/rules", {
      name: "raw facts",
      pattern: { source: ["simroot.ingest"] },
      actions: [{ type: "quarantine" }],
    });
    expect([raw.status, JSON.stringify(raw.json.errors)]).toEqual([400, expect.stringContaining('source \\"simroot\\" only')]);
    expect((await tenant.call("GET", "/v1/automation/rules")).json.items).toEqual([]);
  });
});

describe("rules across instances that share only the store", () => {
  it("an instance reads a tenant's rules once per window for a burst of events, and matches a rule created elsewhere within the window", async () => {
    const { tenant, deviceId } = await setup([]);
    // Instance B: its own store client (its own cache), a clock the test moves.
    let queries = 0;
    const db = documentClient({ endpoint: runtime.endpoint, region: "us-east-1" });
    db.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "QueryCommand" && (args.input as { TableName?: string }).TableName === runtime.ports.tables.automation)
          queries++;
        return next(args);
      },
      { step: "initialize" },
    );
    let clock = Date.now();
    const b = { ...portsFor(db, runtime.ports.tables, { publish: async () => {} }), now: () => new Date(clock) };
    const envelope = (n: number) => labelsChanged(tenant.tenant.id, deviceId, `evt_burst_${n}`, new Date(clock));

    for (let n = 0; n < 50; n++) expect((await runAutomation(b, envelope(n))).value).toEqual([]);
    expect(queries).toBe(1);

    // A rule made through instance A (the API): B matches it once its window passed, not before reading again.
    const rule = await tenant.call("POST", "/v1/automation/rules", {
      name: "label changes are dry-run",
      pattern: { source: ["simroot"], "detail-type": ["device.labels_changed"] },
      actions: [{ type: "add-labels", labels: { seen: "yes" } }],
      dryRun: true,
    });
    expect(rule.status, rule.text).toBe(201);
    clock += recordCacheMs;
    const firings = (await runAutomation(b, envelope(50))).value;
    expect(firings.map((firing) => [firing.ruleId, firing.outcome])).toEqual([[rule.json.id, "dry-run"]]);
    expect(queries).toBe(2);
    // Fired once per event: a redelivery of the same event fires nothing.
    expect((await runAutomation(b, envelope(50))).value).toEqual([]);
    db.destroy();
  });

  it("skips a label action on a revoked device, which keeps the labels it was revoked with (review 161)", async () => {
    // Refused 409 by the relabel since review 158, a rule adding a label when a device is revoked failed every firing.
    const { tenant, deviceId, rules } = await setup([
      {
        name: "mark the revoked",
        pattern: { source: ["simroot"], "detail-type": ["device.revoked"] },
        actions: [{ type: "add-labels", labels: { status: "revoked" } }],
      },
    ]);
    expect((await tenant.call("POST", `/v1/devices/${deviceId}/revoke`, { reason: "stolen" })).status).toBe(200);
    await runtime.settled();
    const fired = (await audit(tenant, deviceId)).find((record) => record.action === "automation.fired");
    expect(fired?.data).toMatchObject({
      ruleId: rules[0].id,
      outcome: "fired",
      actions: [{ type: "add-labels", outcome: "skipped", detail: "a revoked device keeps the labels it was revoked with" }],
    });
    expect((await tenant.call("GET", `/v1/devices/${deviceId}`)).json.labels).toEqual({ fleet: "meters" });
  });

  it("records a rule's firings over 16 partitions, once per event", async () => {
    const { tenant, deviceId } = await setup([
      {
        name: "every label change",
        pattern: { source: ["simroot"], "detail-type": ["device.labels_changed"] },
        actions: [{ type: "add-labels", labels: { seen: "yes" } }],
        dryRun: true,
        // Every match within the limit: a spent match past the records kept of those is not recorded (nor kept once).
        rateLimit: { max: 100, perSeconds: 60 },
      },
    ]);
    const envelope = (n: number) => labelsChanged(tenant.tenant.id, deviceId, `evt_spread_${n}`, new Date());
    for (let n = 0; n < 48; n++) expect((await runAutomation(runtime.ports, envelope(n))).value).toHaveLength(1);
    for (let n = 0; n < 48; n++) expect((await runAutomation(runtime.ports, envelope(n))).value).toEqual([]);
    const { Items } = await runtime.ports.db.send(
      new ScanCommand({
        TableName: runtime.ports.tables.automation,
        FilterExpression: "begins_with(pk, :fired)",
        ExpressionAttributeValues: { ":fired": `T#${tenant.tenant.id}#fired` },
      }),
    );
    const partitions = new Map<string, number>();
    for (const item of Items ?? []) partitions.set(String(item.pk), (partitions.get(String(item.pk)) ?? 0) + 1);
    expect([...partitions.values()].reduce((sum, count) => sum + count, 0)).toBe(48);
    expect(partitions.size).toBeGreaterThanOrEqual(8);
    expect(Math.max(...partitions.values())).toBeLessThanOrEqual(12);
  });
});

/** Two rules with opposite actions on one label: `where` is home when the device attaches in France, abroad in the US. */
async function whereRules(tenant: Awaited<ReturnType<typeof setup>>["tenant"]) {
  for (const [country, where] of [
    ["FR", "home"],
    ["US", "abroad"],
  ]) {
    const created = await tenant.call("POST", "/v1/automation/rules", {
      name: `attached in ${country}`,
      pattern: { source: ["simroot"], "detail-type": ["sim.attached"], detail: { data: { country: [country] } } },
      actions: [{ type: "add-labels", labels: { where } }],
    });
    expect(created.status, created.text).toBe(201);
  }
}

/** The event an audit record tells, as the bus delivers it to the automation consumer. */
const envelopeOf = (record: Schema<"AuditRecord">) =>
  ({ source: "simroot", "detail-type": record.action, detail: eventOfRecord(record as AuditRecord) }) as unknown as BusEnvelope;

describe("rules on a device's events delivered out of order (review 115)", () => {
  it("leaves a label as the later change's rule set it, whichever of the two events is delivered last", async () => {
    const { tenant, deviceId } = await setup([]);
    const { imsi } = (await tenant.call("GET", `/v1/devices/${deviceId}`)).json;
    const send = await simrootSource(runtime, tenant);
    const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString();
    // Attached at home (MCC 208, France), detached, attached abroad (MCC 310, the US): two changes of one device.
    await send(coreFact("sim.attached", imsi, { bearer: "cellular", ipv4: "10.9.0.1", plmn: { mcc: "208", mnc: "01" } }, at(3), "home"));
    await send(coreFact("sim.detached", imsi, { bearer: "cellular" }, at(2), "left"));
    await send(coreFact("sim.attached", imsi, { bearer: "cellular", ipv4: "10.9.0.2", plmn: { mcc: "310", mnc: "260" } }, at(1), "abroad"));
    const attaches = (await audit(tenant, deviceId)).filter((record) => record.action === "sim.attached");
    expect(attaches.map((record) => record.data.country)).toEqual(["FR", "US"]);
    // Each event names the device's revision once changed: the later change has the higher one.
    expect(Number(attaches[0]!.data.revision)).toBeLessThan(Number(attaches[1]!.data.revision));

    // Two rules with opposite actions on one label, made after the events were delivered (so none reached them yet).
    await whereRules(tenant);
    // EventBridge delivers in any order: the later change's event first, the earlier one's after it.
    const later = await runAutomation(runtime.ports, envelopeOf(attaches[1]!));
    expect(later.value.map((firing) => firing.actions[0]?.outcome)).toEqual(["done"]);
    const earlier = await runAutomation(runtime.ports, envelopeOf(attaches[0]!));
    expect(earlier.value.map((firing) => firing.actions[0])).toEqual([
      { type: "add-labels", outcome: "skipped", detail: "a later change of the device acted on these labels first" },
    ]);
    await runtime.settled();
    expect((await tenant.call("GET", `/v1/devices/${deviceId}`)).json.labels).toEqual({ fleet: "meters", where: "abroad" });
  });

  it("keeps a label a person set after the change a late event tells of; a later change's rule still acts", async () => {
    const { tenant, deviceId } = await setup([]);
    const { imsi } = (await tenant.call("GET", `/v1/devices/${deviceId}`)).json;
    const send = await simrootSource(runtime, tenant);
    const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString();
    await send(coreFact("sim.attached", imsi, { bearer: "cellular", ipv4: "10.9.1.1", plmn: { mcc: "208", mnc: "01" } }, at(3), "home"));
    await runtime.settled();
    await whereRules(tenant);
    // A person sets the label through the API after that attach, before its event reaches the rule.
    const device = await tenant.call("GET", `/v1/devices/${deviceId}`);
    const relabelled = await tenant.call(
      "PATCH",
      `/v1/devices/${deviceId}`,
      { labels: { fleet: "meters", where: "workshop" } },
      { "if-match": device.headers.get("etag")! },
    );
    expect(relabelled.status, relabelled.text).toBe(200);
    // One mark for the relabel, whatever its keys: the device's revision.
    const { Item: mark } = await runtime.ports.db.send(
      new GetCommand({
        TableName: runtime.ports.tables.automation,
        Key: { pk: `T#${tenant.tenant.id}#labels#${deviceId}`, sk: "#person" },
        ConsistentRead: true,
      }),
    );
    expect(Object.keys(mark ?? {}).sort()).toEqual(["expiresAt", "pk", "revision", "sk"]);
    expect(mark?.revision).toBe(relabelled.json.revision);
    const home = (await audit(tenant, deviceId)).find((record) => record.action === "sim.attached")!;
    const late = await runAutomation(runtime.ports, envelopeOf(home));
    expect(late.value.map((firing) => firing.actions[0])).toEqual([
      { type: "add-labels", outcome: "skipped", detail: "a later change of the device acted on these labels first" },
    ]);
    expect((await tenant.call("GET", `/v1/devices/${deviceId}`)).json.labels).toEqual({ fleet: "meters", where: "workshop" });
    // The device moves on: an attach abroad, a change after the person's, and its rule relabels the device.
    await send(coreFact("sim.detached", imsi, { bearer: "cellular" }, at(2), "left"));
    await send(coreFact("sim.attached", imsi, { bearer: "cellular", ipv4: "10.9.1.2", plmn: { mcc: "310", mnc: "260" } }, at(1), "abroad"));
    await runtime.settled();
    expect((await tenant.call("GET", `/v1/devices/${deviceId}`)).json.labels).toEqual({ fleet: "meters", where: "abroad" });
  });
});
