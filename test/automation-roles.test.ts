/**
 * A rule acts on what its role may read (review 90). Webhook subscriptions are sent only the events the role that made or
 * last changed them reads (review 87); an operator's automation rule could still match `key.*` (admin-only) events and
 * fire on them: a firing is no action on a device, but it told the operator that a key was made, rotated or revoked.
 * A rule now records the role that made or last changed it: one whose pattern may match an event that role may not read
 * is refused, and one stored before (an operator's, having no role) never fires on such an event.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Schema } from "@simroot/sdk";
import { forgetRole, operatorOf as operatorsOf } from "./support/roles.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

type Tenant = Awaited<ReturnType<typeof tenantClient>>;

const operatorOf = (tenant: Tenant) => operatorsOf(runtime, tenant);

const onKeys = { source: ["simroot"], "detail-type": ["key.created"] };
const labelIt = [{ type: "add-labels", labels: { seen: "yes" } }];

describe("an automation rule matches only what its role reads (review 90)", { timeout: 60_000 }, () => {
  it("refuses an operator's rule that may match key events, naming the pattern, and stores nothing", async () => {
    const tenant = await tenantClient(runtime, "rule-roles-refused");
    const operator = await operatorOf(tenant);

    const named = await operator("POST", "/v1/automation/rules", { name: "keys", pattern: onKeys, actions: labelIt });
    expect(named.status, named.text).toBe(400);
    expect(named.headers.get("content-type")).toContain("application/problem+json");
    expect(named.json.errors).toEqual([
      expect.objectContaining({ path: "pattern.detail-type", message: expect.stringContaining("key.created") }),
    ]);

    // A pattern naming no event type matches every type, the key events too.
    const everything = await operator("POST", "/v1/automation/rules", { name: "all", pattern: { source: ["simroot"] }, actions: labelIt });
    expect(everything.status, everything.text).toBe(400);
    expect(everything.json.errors).toEqual([expect.objectContaining({ path: "pattern", message: expect.stringContaining("key.created") })]);

    const prefixed = await operator("POST", "/v1/automation/rules", {
      name: "prefix",
      pattern: { "detail-type": [{ prefix: "k" }] },
      actions: labelIt,
    });
    expect(prefixed.status, prefixed.text).toBe(400);
    expect((await operator("GET", "/v1/automation/rules")).json.items).toEqual([]);

    // What an operator reads, it may match: device events.
    const devices = await operator("POST", "/v1/automation/rules", {
      name: "devices",
      pattern: { source: ["simroot"], "detail-type": [{ prefix: "device." }] },
      actions: labelIt,
    });
    expect(devices.status, devices.text).toBe(201);
    expect(devices.json.role).toBe("operator");

    // An admin may match key events; an operator's change would make the rule an operator's, and is refused.
    const admins = await tenant.call("POST", "/v1/automation/rules", { name: "admins", pattern: onKeys, actions: labelIt });
    expect(admins.status, admins.text).toBe(201);
    expect(admins.json.role).toBe("admin");
    const renamed = await operator("PATCH", `/v1/automation/rules/${admins.json.id}`, { name: "mine now" }, { "if-match": '"1"' });
    expect(renamed.status, renamed.text).toBe(400);
    expect(renamed.json.errors).toEqual([expect.objectContaining({ path: "pattern.detail-type" })]);
    expect((await tenant.call("GET", `/v1/automation/rules/${admins.json.id}`)).json).toMatchObject({
      name: "admins",
      revision: 1,
      role: "admin",
    });
  });

  it("an operator may stop an admin's rule (disable it, or make it a dry run): the rule stays the admin's", async () => {
    const tenant = await tenantClient(runtime, "rule-roles-stop");
    const operator = await operatorOf(tenant);
    const admins = await tenant.call("POST", "/v1/automation/rules", { name: "admins", pattern: onKeys, actions: labelIt });
    expect(admins.status, admins.text).toBe(201);

    const dry = await operator("PATCH", `/v1/automation/rules/${admins.json.id}`, { dryRun: true }, { "if-match": '"1"' });
    expect(dry.status, dry.text).toBe(200);
    expect(dry.json).toMatchObject({ dryRun: true, enabled: true, role: "admin", revision: 2 });
    const disabled = await operator("PATCH", `/v1/automation/rules/${admins.json.id}`, { enabled: false }, { "if-match": '"2"' });
    expect(disabled.status, disabled.text).toBe(200);
    expect(disabled.json).toMatchObject({ enabled: false, role: "admin", revision: 3 });

    // Making it act again is a change of the operator's: the rule would become an operator's on key events, refused.
    for (const changes of [{ enabled: true }, { dryRun: false }, { enabled: false, name: "mine now" }]) {
      const refused = await operator("PATCH", `/v1/automation/rules/${admins.json.id}`, changes, { "if-match": '"3"' });
      expect(refused.status, refused.text).toBe(400);
    }
    // A rule stored before roles were recorded (an operator's) that matches key events can still be stopped by
    // anyone who may change rules (review 91: the stop was checked against the operator's role, and refused).
    const legacy = await tenant.call("POST", "/v1/automation/rules", { name: "legacy", pattern: onKeys, actions: labelIt });
    await forgetRole(runtime, tenant.tenant.id, "rule", legacy.json.id);
    const stopped = await tenant.call("PATCH", `/v1/automation/rules/${legacy.json.id}`, { enabled: false }, { "if-match": '"1"' });
    expect(stopped.status, stopped.text).toBe(200);
    expect(stopped.json).toMatchObject({ enabled: false, role: "operator" });

    // The admin turns it back on.
    const enabled = await tenant.call("PATCH", `/v1/automation/rules/${admins.json.id}`, { enabled: true }, { "if-match": '"3"' });
    expect(enabled.status, enabled.text).toBe(200);
    expect(enabled.json).toMatchObject({ enabled: true, dryRun: true, role: "admin", revision: 4 });
  });

  it("a rule stored before roles were recorded (an operator's) does not fire on a key event; an admin's does", async () => {
    const tenant = await tenantClient(runtime, "rule-roles-legacy");
    const legacy = await tenant.call("POST", "/v1/automation/rules", { name: "legacy", pattern: onKeys, actions: labelIt });
    expect(legacy.status, legacy.text).toBe(201);
    // As stored before review 90: no role.
    await forgetRole(runtime, tenant.tenant.id, "rule", legacy.json.id);
    // Made through the API after that write: the consumer reads the tenant's rules afresh.
    const admins = await tenant.call("POST", "/v1/automation/rules", { name: "admins", pattern: onKeys, actions: labelIt });
    expect(admins.status, admins.text).toBe(201);
    expect((await tenant.call("GET", `/v1/automation/rules/${legacy.json.id}`)).json.role).toBe("operator");

    const key = await tenant.call("POST", "/v1/keys", { name: "secret project", role: "viewer" });
    expect(key.status, key.text).toBe(201);
    await runtime.settled();
    const records = (await tenant.call("GET", `/v1/audit?subject=${key.json.key.keyId}&limit=100`)).json.items as Schema<"AuditRecord">[];
    const firedBy = records
      .filter((record) => record.action === "automation.fired")
      .map((record) => (record.data as { ruleId: string }).ruleId);
    expect(firedBy).toContain(admins.json.id);
    expect(firedBy).not.toContain(legacy.json.id);
  });
});
