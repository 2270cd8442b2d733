/**
 * The bus's dead letters are shown to a key only when its role may read their events (review 92), as a subscription's
 * delivery log is (review 87): operators and viewers were listed each admin-only event that a consumer failed (a key's
 * creation, a source's), its type and its subject (the key's or the source's id), and an operator could hand it back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deadLetterPartition, recordDeadLetter, recordRefusedEvent, type BusEnvelope } from "@simroot/core";
import { committedEvents } from "./support/audit-events.ts";
import { operatorOf } from "./support/roles.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

describe("bus dead letters by role (review 92)", () => {
  it("an operator is listed, page by page, only the dead letters of events it may read, and may redrive no other", async () => {
    const tenant = await tenantClient(runtime, "letters");
    const operator = await operatorOf(runtime, tenant);
    expect((await tenant.call("POST", "/v1/devices", { imsi: "208019900000001" })).status).toBe(201);
    expect((await tenant.call("POST", "/v1/keys", { name: "hidden", role: "viewer" })).status).toBe(201);
    expect((await tenant.call("POST", "/v1/devices", { imsi: "208019900000002" })).status).toBe(201);
    await runtime.settled();
    // What a consumer failed for good, as the bus records it.
    const events = (await committedEvents(runtime, tenant.tenant.id)).filter((event) =>
      ["device.registered", "key.created"].includes(event.type),
    );
    for (const event of events) {
      const envelope = { source: "simroot", "detail-type": event.type, detail: event } as unknown as BusEnvelope;
      await recordDeadLetter(runtime.ports, { rule: "automation", reason: "failed", envelope });
    }
    const all = (await tenant.call("GET", "/v1/bus/dead-letters?limit=100")).json.items as { id: string; eventType: string }[];
    const hidden = all.filter((letter) => letter.eventType === "key.created");
    expect(hidden.length).toBeGreaterThan(0);
    expect(all.length - hidden.length).toBe(2);

    const shown: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const page = await operator("GET", `/v1/bus/dead-letters?limit=1${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status, page.text).toBe(200);
      shown.push(...(page.json.items as { id: string }[]).map((letter) => letter.id));
      cursor = page.json.next;
      if (!cursor) break;
      const named = Buffer.from(cursor, "base64url").toString("utf8");
      for (const letter of hidden) expect(named).not.toContain(letter.id.split("~")[0]);
    }
    expect(shown.sort()).toEqual(
      all
        .filter((letter) => letter.eventType !== "key.created")
        .map((letter) => letter.id)
        .sort(),
    );
    const redrive = await operator("POST", `/v1/bus/dead-letters/${encodeURIComponent(hidden[0]!.id)}/redrive`);
    expect([redrive.status, redrive.json.type]).toEqual([404, "urn:simroot:problem:dead_letter.not_found"]);
    // An admin still sees and may redrive it.
    expect((await tenant.call("GET", "/v1/bus/dead-letters?limit=100")).json.items).toHaveLength(all.length);
  });

  it("reads past a long run of hidden letters a hundred at a time, not one query each (review 94)", async () => {
    const tenant = await tenantClient(runtime, "letters-run");
    const operator = await operatorOf(runtime, tenant);
    expect((await tenant.call("POST", "/v1/devices", { imsi: "208019900000011" })).status).toBe(201);
    await runtime.settled();
    const registered = (await committedEvents(runtime, tenant.tenant.id)).find((event) => event.type === "device.registered")!;
    const letter = (event: typeof registered) =>
      recordDeadLetter(runtime.ports, {
        rule: "automation",
        reason: "failed",
        envelope: { source: "simroot", "detail-type": event.type, detail: event } as unknown as BusEnvelope,
      });
    // Letters sort by event id: one shown first, then 250 an operator may not read, then one shown.
    await letter({ ...registered, id: "evt_A0000" });
    for (let n = 0; n < 250; n++) await letter({ ...registered, id: `evt_B${String(n).padStart(4, "0")}`, type: "key.created" });
    await letter({ ...registered, id: "evt_C0000" });
    let queries = 0;
    runtime.ports.db.middlewareStack.add(
      (next, context) => async (args) => {
        // Only this tenant's letters: the runtime's own loops query the store meanwhile.
        const values = (args.input as { ExpressionAttributeValues?: Record<string, unknown> }).ExpressionAttributeValues;
        const named = Object.values(values ?? {}).includes(deadLetterPartition(tenant.tenant.id));
        if ((context as { commandName?: string }).commandName === "QueryCommand" && named) queries++;
        return next(args);
      },
      { step: "initialize", name: "countLetterQueries" },
    );
    try {
      const first = await operator("GET", "/v1/bus/dead-letters?limit=1");
      queries = 0;
      const second = await operator("GET", `/v1/bus/dead-letters?limit=1&cursor=${first.json.next}`);
      expect(first.json.items.map((item: { eventId: string }) => item.eventId)).toEqual(["evt_A0000"]);
      expect(second.json.items.map((item: { eventId: string }) => item.eventId)).toEqual(["evt_C0000"]);
      // It asked for what the page lacked, one item: 251 queries for this page.
      expect(queries).toBeLessThanOrEqual(3);
    } finally {
      runtime.ports.db.middlewareStack.remove("countLetterQueries");
    }
  });

  it("judges a letter of an event the bus refused by every type it tells of (review 94)", async () => {
    const tenant = await tenantClient(runtime, "letters-refused");
    const operator = await operatorOf(runtime, tenant);
    // A rule's firing record about a key's creation, which the bus refused: no event kept, its subject the key's id.
    const record = {
      tenantId: tenant.tenant.id,
      eventId: "evt_01M900000000000000000000AA",
      action: "automation.fired",
      subject: "key_01M900000000000000000000AA",
      shard: 0,
      seq: 1,
      data: { ruleId: "rul_1", eventType: "key.created", outcome: "fired", actions: [] },
    };
    expect(await recordRefusedEvent(runtime.ports, { record, reason: "EntryTooLarge" })).toBe(true);
    const asOperator = (await operator("GET", "/v1/bus/dead-letters?limit=100")).json.items as { eventId: string }[];
    expect(asOperator.map((letter) => letter.eventId)).not.toContain(record.eventId);
    const asAdmin = (await tenant.call("GET", "/v1/bus/dead-letters?limit=100")).json.items as { eventId: string }[];
    expect(asAdmin.map((letter) => letter.eventId)).toContain(record.eventId);
  });
});
