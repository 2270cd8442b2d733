/**
 * The audit API: every documented filter combination of `GET /v1/audit` answers, and
 * answers exactly the records it names; `/v1/audit/verify` walks only the records after the
 * signed checkpoint, the whole chain being an admin's walk.
 */
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditCheckpointKey, auditPartition, auditSortKey } from "@simroot/core";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
type Tenant = Awaited<ReturnType<typeof tenantClient>>;
const register = async (tenant: Tenant, n: number) =>
  (await tenant.call("POST", "/v1/devices", { imsi: `20801000000${String(n).padStart(4, "0")}` })).json as { id: string };

describe("the audit API", () => {
  it("answers every documented filter combination (subject, from, to) with exactly the records it names", async () => {
    const tenant = await tenantClient(runtime, "filters");
    const first = await register(tenant, 1);
    await pause(30);
    const second = await register(tenant, 2);
    await tenant.call("POST", `/v1/devices/${second.id}/suspend`, { reason: "check" });
    await pause(30);
    await tenant.call("POST", `/v1/devices/${first.id}/suspend`, { reason: "check" });
    const all = (await tenant.call("GET", "/v1/audit?limit=1000")).json.items as { seq: number; time: string; subject: string }[];
    // The tenant's creation is record 1 (audited since issue 11), then the four changes.
    expect(all.length).toBe(5);
    // Bounds between the records, one of them written with another UTC offset.
    const middle = all[2]!.time;
    const later = new Date(Date.parse(all[4]!.time) - 1).toISOString();
    const offset = (iso: string) => new Date(Date.parse(iso) + 2 * 3600_000).toISOString().replace("Z", "+02:00");
    const filters = { subject: [undefined, second.id], from: [undefined, middle], to: [undefined, later, offset(later)] };
    for (const subject of filters.subject) {
      for (const from of filters.from) {
        for (const to of filters.to) {
          const query = new URLSearchParams({
            limit: "1000",
            ...(subject ? { subject } : {}),
            ...(from ? { from } : {}),
            ...(to ? { to } : {}),
          });
          const answer = await tenant.call("GET", `/v1/audit?${query}`);
          expect(answer.status, String(query)).toBe(200);
          const bound = to && new Date(to).toISOString();
          const expected = all.filter(
            (record) => (!subject || record.subject === subject) && (!from || record.time >= from) && (!bound || record.time < bound),
          );
          expect(
            answer.json.items.map((record: { seq: number }) => record.seq),
            String(query),
          ).toEqual(expected.map((record) => record.seq));
        }
      }
    }
    // The export takes the same filters.
    const exported = await tenant.call("GET", `/v1/audit/export?from=${encodeURIComponent(middle)}`);
    expect(exported.status).toBe(200);
    expect(exported.text.trim().split("\n")).toHaveLength(3);
  });

  it("verifies O(new records) per call from a signed checkpoint; the whole chain is an admin's walk", async () => {
    const tenant = await tenantClient(runtime, "checkpoints");
    for (let n = 0; n < 5; n++) await register(tenant, 10 + n);
    const viewer = (await tenant.call("POST", "/v1/keys", { name: "auditor", role: "viewer" })).json.token as string;
    expect((await call(runtime, viewer, "GET", "/v1/audit/verify")).json).toMatchObject({ valid: true, from: 0, checked: 7, lastSeq: 7 });
    await register(tenant, 20);
    await register(tenant, 21);
    // Only what came after the checkpoint is walked.
    expect((await call(runtime, viewer, "GET", "/v1/audit/verify")).json).toMatchObject({ valid: true, from: 7, checked: 2, lastSeq: 9 });
    expect((await call(runtime, viewer, "GET", "/v1/audit/verify")).json).toMatchObject({ valid: true, from: 9, checked: 0, lastSeq: 9 });
    // The whole walk: admins only.
    const denied = await call(runtime, viewer, "GET", "/v1/audit/verify?full=true");
    expect(denied.status).toBe(403);
    expect(denied.headers.get("content-type")).toMatch(/problem\+json/);
    expect((await tenant.call("GET", "/v1/audit/verify?full=true")).json).toMatchObject({ valid: true, from: 0, checked: 9 });

    // A record altered inside the checkpointed prefix: the admin's full walk finds it.
    const tenantId = tenant.tenant.id;
    await runtime.ports.db.send(
      new UpdateCommand({
        TableName: runtime.ports.tables.audit,
        Key: { pk: auditPartition(tenantId), sk: auditSortKey(3) },
        UpdateExpression: "SET actor = :a",
        ExpressionAttributeValues: { ":a": "key:someone-else" },
      }),
    );
    expect((await tenant.call("GET", "/v1/audit/verify?full=true")).json).toMatchObject({ valid: false, brokenAt: { seq: 3 } });
    // The record right after the checkpoint must chain from its signed hash.
    await register(tenant, 22);
    await runtime.ports.db.send(
      new UpdateCommand({
        TableName: runtime.ports.tables.audit,
        Key: { pk: auditPartition(tenantId), sk: auditSortKey(10) },
        UpdateExpression: "SET actor = :a",
        ExpressionAttributeValues: { ":a": "key:someone-else" },
      }),
    );
    expect((await call(runtime, viewer, "GET", "/v1/audit/verify")).json).toMatchObject({ valid: false, from: 9, brokenAt: { seq: 10 } });
    // Someone who can write the store but holds no key moves the checkpoint past his change: refused.
    await runtime.ports.db.send(
      new UpdateCommand({
        TableName: runtime.ports.tables.control,
        Key: auditCheckpointKey(tenantId),
        UpdateExpression: "SET seq = :s",
        ExpressionAttributeValues: { ":s": 10 },
      }),
    );
    expect((await call(runtime, viewer, "GET", "/v1/audit/verify")).json).toMatchObject({
      valid: false,
      brokenAt: { reason: "the audit checkpoint is not signed by the control plane's key" },
    });
  });
});
