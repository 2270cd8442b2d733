/**
 * Automation rules act once per event (review 67). EventBridge delivers at least once: the same event can reach
 * two automation invocations at once, or again after an invocation failed part-way. "Once per event" (docs/
 * continuous-verification.md) must hold for the actions themselves, not only for the `automation.fired` record.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAutomation, type BusEnvelope, type Ports } from "@simroot/core";
import { committedEvents } from "./support/audit-events.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let imsis = 0;
async function tenantWithRule(actions: unknown[], rateLimit = { max: 100, perSeconds: 60 }) {
  const tenant = await tenantClient(runtime, `once-${imsis}`);
  const device = await tenant.call("POST", "/v1/devices", { name: "meter", imsi: `23467000000${String(++imsis).padStart(4, "0")}` });
  expect(device.status, device.text).toBe(201);
  const rule = await tenant.call("POST", "/v1/automation/rules", {
    name: "vendor access on a label change",
    pattern: { source: ["simroot"], "detail-type": ["device.labels_changed"] },
    actions,
    rateLimit,
  });
  expect(rule.status, rule.text).toBe(201);
  return { tenant, deviceId: device.json.id as string, rule: rule.json };
}

/** One `device.labels_changed` event as the bus delivers it (the same object on every delivery). */
const labelsChanged = (tenantId: string, deviceId: string, id: string) =>
  ({
    version: "0",
    id,
    source: "simroot",
    "detail-type": "device.labels_changed",
    account: "local",
    region: "local",
    time: new Date().toISOString(),
    resources: [],
    detail: {
      id,
      type: "device.labels_changed",
      tenantId,
      subject: deviceId,
      time: new Date().toISOString(),
      actor: "key:k_test",
      requestId: "req_once",
      data: {},
    },
  }) as unknown as BusEnvelope;

const startGrant = {
  type: "start-grant",
  principal: "vendor:acme/oncall",
  destinations: [{ cidr: "10.8.0.0/24", ports: [22], protocol: "tcp" }],
  minutes: 60,
};

/** A rule that starts a vendor's grant and opens an incident, at most once an hour (a containment's budget). */
const containment = [startGrant, { type: "open-incident", severity: "high" }];
const oneAnHour = { max: 1, perSeconds: 3600 };

/** The runtime's ports whose first read of a device's open incident is throttled, once (a transient store failure). */
function failingOnce(): Ports {
  let failed = false;
  const db = {
    send: (command: { constructor: { name: string }; input: { Key?: { pk?: string } } }) => {
      if (!failed && command.constructor.name === "GetCommand" && String(command.input.Key?.pk).endsWith("#incident-open")) {
        failed = true;
        return Promise.reject(Object.assign(new Error("Rate of requests exceeds the allowed throughput"), { name: "ThrottlingException" }));
      }
      return runtime.ports.db.send(command as never);
    },
  } as unknown as Ports["db"];
  return { ...runtime.ports, db };
}

describe("an automation action taken once per event (review 67)", { timeout: 120_000 }, () => {
  it("an event delivered twice at once starts one grant, not two", async () => {
    const { tenant, deviceId } = await tenantWithRule([startGrant]);
    const envelope = labelsChanged(tenant.tenant.id, deviceId, "evt_01KR67DUPL1CATE0000000000");
    // EventBridge at least once: two invocations of the automation consumer with the same event, side by side.
    await Promise.allSettled([runAutomation(runtime.ports, envelope), runAutomation(runtime.ports, envelope)]);
    const grants = (await tenant.call("GET", "/v1/grants")).json.items as { principal: string }[];
    expect(grants.filter((grant) => grant.principal === "vendor:acme/oncall")).toHaveLength(1);
  });

  it("an event redelivered after a later action failed does not start the grant of the first action again", async () => {
    const { tenant, deviceId } = await tenantWithRule([startGrant, { type: "open-incident", severity: "high" }]);
    // A transient store failure in the second action (DynamoDB throttling the incident table's read), once.
    const ports = failingOnce();
    const envelope = labelsChanged(tenant.tenant.id, deviceId, "evt_01KR67REDELIVERED00000000");
    await expect(runAutomation(ports, envelope)).rejects.toThrow(/throughput/);
    // The bus retries the event (EventBridge's retry policy; the local bus's backoff): it succeeds this time.
    await runAutomation(ports, envelope);
    const grants = (await tenant.call("GET", "/v1/grants")).json.items as { principal: string }[];
    expect(grants.filter((grant) => grant.principal === "vendor:acme/oncall")).toHaveLength(1);
  });

  it("an event redelivered after its rule's start-grant was edited starts no second grant (review 68)", async () => {
    const { tenant, deviceId, rule } = await tenantWithRule([startGrant, { type: "open-incident", severity: "high" }]);
    const envelope = labelsChanged(tenant.tenant.id, deviceId, "evt_01KR68RULEED1TED000000000");
    await expect(runAutomation(failingOnce(), envelope)).rejects.toThrow(/throughput/);
    // Before the bus's retry (EventBridge retries for up to 24 h), an admin shortens the vendor's window.
    const edited = await tenant.call(
      "PATCH",
      `/v1/automation/rules/${rule.id}`,
      {
        actions: [
          { ...startGrant, minutes: 30 },
          { type: "open-incident", severity: "high" },
        ],
      },
      { "if-match": '"1"' },
    );
    expect(edited.status, edited.text).toBe(200);
    await runAutomation(runtime.ports, envelope);
    const grants = (await tenant.call("GET", "/v1/grants")).json.items as { principal: string; status: string }[];
    expect(grants.filter((grant) => grant.principal === "vendor:acme/oncall" && grant.status === "active")).toHaveLength(1);
  });

  it("an event redelivered after a failed attempt still fires a rule whose limit is one a window: the unit it took is its own (review 97)", async () => {
    const { tenant, deviceId } = await tenantWithRule(containment, oneAnHour);
    const envelope = labelsChanged(tenant.tenant.id, deviceId, "evt_01KR97REDELIVERED00000000");
    await expect(runAutomation(failingOnce(), envelope)).rejects.toThrow(/throughput/);
    const retried = await runAutomation(runtime.ports, envelope);
    expect(retried.value.map((firing) => firing.outcome)).toEqual(["fired"]);
    expect((await tenant.call("GET", "/v1/incidents")).json.items).toHaveLength(1);
    // The next event finds the window's one unit spent.
    const next = await runAutomation(runtime.ports, labelsChanged(tenant.tenant.id, deviceId, "evt_01KR97NEXT000000000000000"));
    expect(next.value.map((firing) => firing.outcome)).toEqual(["rate-limited"]);
  });

  it("a delivery side by side with one that claimed the window's unit and failed does not bury its claim (review 100)", async () => {
    const { tenant, deviceId } = await tenantWithRule(containment, oneAnHour);
    const envelope = labelsChanged(tenant.tenant.id, deviceId, "evt_01KR100RACE0000000000000");
    await expect(runAutomation(failingOnce(), envelope)).rejects.toThrow(/throughput/);
    // Another event finds the window spent (this instance remembers it so, and asks the store no more).
    const other = await runAutomation(runtime.ports, labelsChanged(tenant.tenant.id, deviceId, "evt_01KR100OTHER000000000000"));
    expect(other.value.map((firing) => firing.outcome)).toEqual(["rate-limited"]);
    // The other delivery read the event's firing item just before the first claimed it: it finds the window spent.
    let early = true;
    const db = {
      send: (command: { constructor: { name: string }; input: { TableName?: string } }) => {
        if (early && command.constructor.name === "GetCommand" && command.input.TableName === runtime.ports.tables.automation) {
          early = false;
          return Promise.resolve({});
        }
        return runtime.ports.db.send(command as never);
      },
    } as unknown as Ports["db"];
    // It leaves the acting to the claim's holder (finding the window spent, it may say rate-limited, recording nothing).
    const beside = await runAutomation({ ...runtime.ports, db }, envelope);
    expect(beside.value.filter((firing) => firing.outcome !== "rate-limited")).toEqual([]);
    // The bus retries the first: it finds its claim, and acts.
    const retried = await runAutomation(runtime.ports, envelope);
    expect(retried.value.map((firing) => firing.outcome)).toEqual(["fired"]);
    expect((await tenant.call("GET", "/v1/incidents")).json.items).toHaveLength(1);
  });

  it("a claim whose answer was lost is answered as taken when sent again, and the rule acts (review 100)", async () => {
    const { tenant, deviceId } = await tenantWithRule([{ type: "open-incident", severity: "high" }], { max: 1, perSeconds: 3600 });
    // The transaction commits; its answer is lost (a 500 on the way back).
    let lost = false;
    const db = {
      send: async (command: { constructor: { name: string } }) => {
        const answer = await runtime.ports.db.send(command as never);
        if (!lost && command.constructor.name === "TransactWriteCommand") {
          lost = true;
          throw Object.assign(new Error("We encountered an internal error"), {
            name: "InternalServerError",
            $metadata: { httpStatusCode: 500 },
          });
        }
        return answer;
      },
    } as unknown as Ports["db"];
    const fired = await runAutomation({ ...runtime.ports, db }, labelsChanged(tenant.tenant.id, deviceId, "evt_01KR100LOST0000000000000"));
    expect([lost, fired.value.map((firing) => firing.outcome)]).toEqual([true, ["fired"]]);
    expect((await tenant.call("GET", "/v1/incidents")).json.items).toHaveLength(1);
  });

  it("a dry run does not spend the rate budget of the rule it tries out: switched to act, the rule acts on the next match", async () => {
    const { tenant, deviceId, rule } = await tenantWithRule([{ type: "add-labels", labels: { suspect: "yes" } }], {
      max: 1,
      perSeconds: 3600,
    });
    const path = `/v1/automation/rules/${rule.id}`;
    expect((await tenant.call("PATCH", path, { dryRun: true }, { "if-match": '"1"' })).status).toBe(200);
    const tried = await runAutomation(runtime.ports, labelsChanged(tenant.tenant.id, deviceId, "evt_01KR67DRYRUN0000000000000"));
    expect(tried.value.map((firing) => firing.outcome)).toEqual(["dry-run"]);
    // Happy with what it would do, the integrator lets it act.
    expect((await tenant.call("PATCH", path, { dryRun: false }, { "if-match": '"2"' })).status).toBe(200);
    const live = await runAutomation(runtime.ports, labelsChanged(tenant.tenant.id, deviceId, "evt_01KR67LIVE00000000000000"));
    expect(live.value.map((firing) => firing.outcome)).toEqual(["fired"]);
    expect((await tenant.call("GET", `/v1/devices/${deviceId}`)).json.labels).toMatchObject({ suspect: "yes" });
  });
});

describe("once per event, under races (review 128)", { timeout: 120_000 }, () => {
  it("a delivery that read the event's firing item just before another delivery claimed and finished it does not fire the rule again", async () => {
    const { tenant, deviceId } = await tenantWithRule([{ type: "open-incident", severity: "high" }], { max: 2, perSeconds: 3600 });
    const envelope = labelsChanged(tenant.tenant.id, deviceId, "evt_01KONCERACEDONE0000000000");
    // Delivery B reads the firing item (absent), then pauses; delivery A runs start to end meanwhile.
    let releaseB!: () => void;
    const aDone = new Promise<void>((resolve) => (releaseB = resolve));
    let firstGet = true;
    const db = {
      send: async (command: { constructor: { name: string }; input: { TableName?: string; Key?: { pk?: string } } }) => {
        const answer = await runtime.ports.db.send(command as never);
        if (firstGet && command.constructor.name === "GetCommand" && String(command.input.Key?.pk).includes("#fired#")) {
          firstGet = false;
          await aDone;
        }
        return answer;
      },
    } as unknown as Ports["db"];
    const b = runAutomation({ ...runtime.ports, db }, envelope);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const a = await runAutomation(runtime.ports, envelope);
    expect(a.value.map((firing) => firing.outcome)).toEqual(["fired"]);
    releaseB();
    const second = await b;
    const fired = (await committedEvents(runtime, tenant.tenant.id)).filter(
      (event) => event.type === "automation.fired" && event.data.eventId === envelope.detail.id,
    );
    // The rule's budget is 2 a window: one event took one unit, so the next event still fires.
    const next = await runAutomation(runtime.ports, labelsChanged(tenant.tenant.id, deviceId, "evt_01KONCERACENEXT0000000000"));
    // Once per event: one firing record, the second delivery leaves it alone, and the next event fires.
    expect({ records: fired.length, second: second.value.map((firing) => firing.outcome), next: next.value.map((f) => f.outcome) }).toEqual(
      {
        records: 1,
        second: [],
        next: ["fired"],
      },
    );
  });

  it("an action that lost a race with the device's other writers is taken on the event's redelivery, not recorded as done for good", async () => {
    const { tenant, deviceId } = await tenantWithRule([{ type: "add-labels", labels: { suspect: "yes" } }]);
    const envelope = labelsChanged(tenant.tenant.id, deviceId, "evt_01KONCECONTENDED000000000");
    // The device is busy: another writer changes it right after each of the rule's reads of it (twice an attempt: the action reads it, and so does the update it makes).
    let busyFor = 8;
    const db = {
      send: async (command: { constructor: { name: string }; input: { TableName?: string } }) => {
        const answer = await runtime.ports.db.send(command as never);
        if (busyFor > 0 && command.constructor.name === "GetCommand" && command.input.TableName === runtime.ports.tables.identity) {
          busyFor--;
          const current = await tenant.call("GET", `/v1/devices/${deviceId}`);
          const renamed = await tenant.call(
            "PATCH",
            `/v1/devices/${deviceId}`,
            { name: `meter-${busyFor}` },
            { "if-match": current.headers.get("etag")! },
          );
          expect(renamed.status, renamed.text).toBe(200);
        }
        return answer;
      },
    } as unknown as Ports["db"];
    const first = await runAutomation({ ...runtime.ports, db }, envelope).catch((error: unknown) => error);
    // The bus delivers the event again (EventBridge's retry, or a redrive); the device is quiet now.
    await runAutomation(runtime.ports, envelope).catch(() => undefined);
    const labels = (await tenant.call("GET", `/v1/devices/${deviceId}`)).json.labels as Record<string, string>;
    expect({
      first: first instanceof Error ? "threw" : (first as { value: { actions: { outcome: string }[] }[] }).value[0]?.actions[0]?.outcome,
      suspect: labels.suspect,
    }).toMatchObject({ suspect: "yes" });
  });

  it("refuses an end-grant action naming an empty grant id, with problem+json, and creates no rule", async () => {
    const tenant = await tenantClient(runtime, "once-endgrant");
    const answer = await tenant.call("POST", "/v1/automation/rules", {
      name: "end the grant",
      pattern: { source: ["simroot"], "detail-type": ["grant.created"] },
      actions: [{ type: "end-grant", grantId: "" }],
    });
    const rules = (await tenant.call("GET", "/v1/automation/rules")).json.items as unknown[];
    expect({ status: answer.status, type: answer.headers.get("content-type"), rules: rules.length }).toEqual({
      status: 400,
      type: "application/problem+json",
      rules: 0,
    });
  });
});
