/**
 * A rule or subscription stored before a pattern bound does not run past it (review 90). Review 86 bounded a pattern at
 * 100 conditions when it is written; one stored before was matched as it was, whatever it cost each event. Loaded, a
 * stored pattern is held to the checks a new one passes: one that fails them matches nothing, and its rule or
 * subscription says why (`problem`) to whoever lists it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RecordKind } from "@simroot/core/automation/records";
import type { Schema } from "@simroot/sdk";
import { rewriteStored } from "./support/roles.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime({ webhookWorkerMs: 0 });
});
afterAll(() => runtime.stop());

const onRegistered = { source: ["simroot"], "detail-type": ["device.registered"] };
/** 101 `$or` branches, each matching a registration: past the bound, and matching what `onRegistered` matches. */
const overBound = { source: ["simroot"], $or: Array.from({ length: 101 }, () => ({ "detail-type": ["device.registered"] })) };

/** Sets a stored record's pattern, as code before the bound could have written it. */
const storePattern = (tenantId: string, kind: RecordKind, id: string, pattern: unknown) =>
  rewriteStored(runtime, tenantId, kind, id, {
    expression: "SET #pattern = :pattern",
    names: { "#pattern": "pattern" },
    values: { ":pattern": pattern },
  });

describe("a stored pattern past today's bounds does not run, and says so (review 90)", { timeout: 60_000 }, () => {
  it("a rule stored with 101 $or branches fires on nothing and is listed with its problem", async () => {
    const tenant = await tenantClient(runtime, "stored-rule");
    const rule = (name: string) =>
      tenant.call("POST", "/v1/automation/rules", {
        name,
        pattern: onRegistered,
        actions: [{ type: "add-labels", labels: { [name]: "yes" } }],
      });
    const old = await rule("old");
    expect(old.status, old.text).toBe(201);
    await storePattern(tenant.tenant.id, "rule", old.json.id, overBound);
    // Made through the API after that write: the consumer reads the tenant's rules afresh.
    const fresh = await rule("fresh");
    expect(fresh.status, fresh.text).toBe(201);

    const device = await tenant.call("POST", "/v1/devices", { imsi: "208019000000001" });
    expect(device.status, device.text).toBe(201);
    await runtime.settled();
    expect((await tenant.call("GET", `/v1/devices/${device.json.id}`)).json.labels).toEqual({ fresh: "yes" });
    const records = (await tenant.call("GET", `/v1/audit?subject=${device.json.id}&limit=100`)).json.items as Schema<"AuditRecord">[];
    const firedBy = records
      .filter((record) => record.action === "automation.fired")
      .map((record) => (record.data as { ruleId: string }).ruleId);
    expect(firedBy).toEqual([fresh.json.id]);

    const listed = (await tenant.call("GET", "/v1/automation/rules")).json.items as { id: string; problem?: string }[];
    expect(listed.find((each) => each.id === old.json.id)?.problem).toMatch(/more than 100 conditions/);
    expect(listed.find((each) => each.id === fresh.json.id)?.problem).toBeUndefined();
    expect((await tenant.call("GET", `/v1/automation/rules/${old.json.id}`)).json.problem).toMatch(/\$or\[\d+\]/);

    // A new pattern within the bounds makes it run again.
    const fixed = await tenant.call("PATCH", `/v1/automation/rules/${old.json.id}`, { pattern: onRegistered }, { "if-match": '"1"' });
    expect(fixed.status, fixed.text).toBe(200);
    expect(fixed.json.problem).toBeUndefined();
  });

  it("a subscription stored with 101 $or branches is sent nothing and is listed with its problem", async () => {
    const tenant = await tenantClient(runtime, "stored-webhook");
    // Nothing listens there: the delivery log records what was queued whatever the receiver answers.
    const subscribe = () => tenant.call("POST", "/v1/webhooks", { url: "http://127.0.0.1:9/hook", pattern: onRegistered });
    const old = await subscribe();
    expect(old.status, old.text).toBe(201);
    await storePattern(tenant.tenant.id, "webhook", old.json.id, overBound);
    const fresh = await subscribe();
    expect(fresh.status, fresh.text).toBe(201);

    expect((await tenant.call("POST", "/v1/devices", { imsi: "208019000000002" })).status).toBe(201);
    await runtime.settled();
    const logged = async (id: string) =>
      ((await tenant.call("GET", `/v1/webhooks/${id}/deliveries?limit=100`)).json.items as { eventType: string }[]).map(
        (each) => each.eventType,
      );
    expect(await logged(fresh.json.id)).toContain("device.registered");
    expect(await logged(old.json.id)).toEqual([]);

    const listed = (await tenant.call("GET", "/v1/webhooks")).json.items as { id: string; problem?: string }[];
    expect(listed.find((each) => each.id === old.json.id)?.problem).toMatch(/more than 100 conditions/);
    expect(listed.find((each) => each.id === fresh.json.id)?.problem).toBeUndefined();
  });
});
