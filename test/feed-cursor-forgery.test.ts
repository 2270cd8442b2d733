/**
 * Forged snapshot cursors (found by a helper review): a start key of the wrong shape is the client's error, 400, never a
 * 500 from the store; so is a snapshot time (`began`, from which the replay counts) that is not a number.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bindingPartition } from "@simroot/core/device/keys";
import { replayClockAllowanceMs, snapshotReplaySeconds } from "@simroot/core/feed/snapshot-replay";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());
const cursorOf = (key: unknown) => Buffer.from(JSON.stringify(key)).toString("base64url");

describe("forged snapshot cursors into the binding table partitions", () => {
  it("answers 400, never 500", async () => {
    const admin = await tenantClient(runtime);
    const pep = (await admin.call("POST", "/v1/keys", { name: "edge-1", role: "pep" })).json.token as string;
    const first = await call(runtime, pep, "GET", `/v1/feed?limit=2`);
    const version = first.json.signed.head.version;
    const tenantId = admin.tenant.id;
    const pk = bindingPartition(tenantId, 0);
    const starts = [
      { pk },
      { pk, sk: 5 },
      { pk, sk: { nested: true } },
      { pk, sk: "10.0.0.1", extra: "x" },
      { pk, sk: "10.0.0.1", gsi1sk: "x" },
      { pk, sk: "" },
      { pk, sk: null },
      { pk, sk: ["a"] },
    ];
    const results: unknown[] = [];
    for (const start of starts) {
      const cursor = cursorOf({ version, page: 1, phase: "bindings", stripe: 17, start });
      const response = await call(runtime, pep, "GET", `/v1/feed?limit=2&cursor=${cursor}`);
      results.push([JSON.stringify(start), response.status]);
    }
    expect(results).toEqual(starts.map((start) => [JSON.stringify(start), 400]));
  });
  it("answers 400 for start keys of the wrong shape into the index partitions too", async () => {
    const admin = await tenantClient(runtime, "other");
    const pep = (await admin.call("POST", "/v1/keys", { name: "edge-1", role: "pep" })).json.token as string;
    const first = await call(runtime, pep, "GET", `/v1/feed?limit=2`);
    const version = first.json.signed.head.version;
    const gsi1pk = `T#${admin.tenant.id}#binding#00`;
    const starts = [{ gsi1pk }, { gsi1pk, pk: "a", sk: 5, gsi1sk: "x" }, { gsi1pk, pk: "a", sk: "b", gsi1sk: "c", extra: 1 }];
    const results: unknown[] = [];
    for (const start of starts) {
      const cursor = cursorOf({ version, page: 1, phase: "bindings", stripe: 1, start });
      const response = await call(runtime, pep, "GET", `/v1/feed?limit=2&cursor=${cursor}`);
      results.push([JSON.stringify(start), response.status]);
    }
    expect(results).toEqual(starts.map((start) => [JSON.stringify(start), 400]));
  });
  it("answers 400 for a snapshot time that is not a number, and takes one from any time as the version's to now", async () => {
    const admin = await tenantClient(runtime, "began");
    const pep = (await admin.call("POST", "/v1/keys", { name: "edge-1", role: "pep" })).json.token as string;
    const version = (await call(runtime, pep, "GET", `/v1/feed?limit=2`)).json.signed.head.version;
    const at = (began: unknown) => cursorOf({ version, page: 1, phase: "replay", began });
    for (const began of ["yesterday", null, { at: 1 }, [1]])
      expect([began, (await call(runtime, pep, "GET", `/v1/feed?limit=2&cursor=${at(began)}`)).status]).toEqual([began, 400]);
    // The dawn of time and the far future are clamped (to the version's own time, to now): the replay answers.
    for (const began of [0, 8.64e15])
      expect([began, (await call(runtime, pep, "GET", `/v1/feed?limit=2&cursor=${at(began)}`)).status]).toEqual([began, 200]);
  });

  it("answers 400 for a replay position that is not a version inside the snapshot's replay window (review 92)", {
    timeout: 60_000,
  }, async () => {
    // The replay position was taken as given: a key narrowed to one site set it to 0 and was listed, as removals, every
    // device of other sites that changed since (20,000 versions back); a string or a fraction answered 500, -3 a 503.
    const admin = await tenantClient(runtime, "replayed");
    const south: string[] = [];
    for (const imsi of ["208015500000001", "208015500000002"])
      south.push((await admin.call("POST", "/v1/devices", { imsi, labels: { site: "south" } })).json.id as string);
    await runtime.settled();
    // Those changes out of any later snapshot's replay window (`snapshotReplaySeconds` before its version's time, or
    // before the clocks' allowance earlier than that, for a cursor that says it was read then: review 105).
    await sleep((snapshotReplaySeconds + replayClockAllowanceMs / 1000 + 3) * 1000);
    expect((await admin.call("POST", "/v1/devices", { imsi: "208015500000003", labels: { site: "north" } })).status).toBe(201);
    await runtime.settled();
    const north = (await admin.call("POST", "/v1/keys", { name: "north", role: "pep", selector: "site=north" })).json.token as string;
    const version = (await call(runtime, north, "GET", `/v1/feed?limit=2`)).json.signed.head.version as number;
    const at = (replayed: unknown) => cursorOf({ version, page: 1, phase: "replay", replayed, scope: "site=north" });
    const answers: unknown[] = [];
    for (const replayed of [0, 1, -3, "x", "1", 0.5, version + 1]) {
      const answer = await call(runtime, north, "GET", `/v1/feed?limit=50&cursor=${at(replayed)}`);
      answers.push([replayed, answer.status, south.filter((id) => answer.text.includes(id))]);
    }
    expect(answers).toEqual([0, 1, -3, "x", "1", 0.5, version + 1].map((replayed) => [replayed, 400, []]));
    // Inside the window, the replay answers, and names no device of the other site.
    const inside = await call(runtime, north, "GET", `/v1/feed?limit=50&cursor=${at(version - 1)}`);
    expect([inside.status, south.filter((id) => inside.text.includes(id))]).toEqual([200, []]);
  });

  it("answers 400 for a version past the tenant's head or a page that no cursor names, and signs nothing for it (review 57)", async () => {
    // The control plane signed a head for any version a cursor claimed (99,999 for a tenant at 15), and for page 0.
    const admin = await tenantClient(runtime, "versions");
    const pep = (await admin.call("POST", "/v1/keys", { name: "edge-1", role: "pep" })).json.token as string;
    const version = (await call(runtime, pep, "GET", `/v1/feed?limit=2`)).json.signed.head.version as number;
    const page = (fields: Record<string, unknown>) => cursorOf({ version, page: 1, phase: "revoked", ...fields });
    for (const fields of [
      { version: version + 1 },
      { version: 99_999 },
      { version: -1 },
      { version: 1.5 },
      { page: 0 },
      { page: -3 },
      { page: "1" },
    ]) {
      const response = await call(runtime, pep, "GET", `/v1/feed?limit=2&cursor=${page(fields)}`);
      expect([fields, response.status, response.json.signed]).toEqual([fields, 400, undefined]);
    }
    expect((await call(runtime, pep, "GET", `/v1/feed?limit=2&cursor=${page({})}`)).status).toBe(200);
  });
});
