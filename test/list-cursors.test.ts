/**
 * Forged list cursors (review 92): a cursor is the store's last key read, base64url JSON, checked to stay in the
 * caller's partition. What else it held was only required to be at most four strings or numbers, so a cursor naming the
 * right partition with a key of the wrong shape (a field left out or added, a number for a string, an empty string)
 * reached DynamoDB, whose refusal answered 500. Each is the client's error: 400 `request.invalid_cursor`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { noteIngest } from "@simroot/core";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const decode = (cursor: string) => JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Record<string, unknown>;
const encode = (key: unknown) => Buffer.from(JSON.stringify(key)).toString("base64url");

/** Cursors of the right partition and the wrong shape, made from a genuine one. */
function forgeries(genuine: Record<string, unknown>, partition: string): Record<string, unknown>[] {
  const others = Object.keys(genuine).filter((field) => field !== partition);
  return [
    { [partition]: genuine[partition] },
    ...others.map((field) => ({ ...genuine, [field]: 5 })),
    ...others.map((field) => ({ ...genuine, [field]: "" })),
    ...others.map((field) => Object.fromEntries(Object.entries(genuine).filter(([name]) => name !== field))),
    { ...genuine, extra: "x" },
  ].filter((forged) => JSON.stringify(forged) !== JSON.stringify(genuine));
}

describe("forged list cursors (review 92)", () => {
  it("answer 400, never 500, on every listing that takes one", async () => {
    const tenant = await tenantClient(runtime, "cursors");
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208017700000001", name: "one" })).json;
    for (const name of ["two", "three"]) {
      const etag = (await tenant.call("GET", `/v1/devices/${device.id}`)).headers.get("etag")!;
      expect((await tenant.call("PATCH", `/v1/devices/${device.id}`, { name }, { "if-match": etag })).status).toBe(200);
    }
    for (const name of ["a", "b"]) expect((await tenant.call("POST", "/v1/keys", { name, role: "viewer" })).status).toBe(201);
    for (const name of ["a", "b"]) {
      const rule = await tenant.call("POST", "/v1/automation/rules", {
        name,
        pattern: { source: ["simroot"], "detail-type": ["device.updated"] },
        actions: [{ type: "add-labels", labels: { seen: "yes" } }],
        dryRun: true,
      });
      expect(rule.status, rule.text).toBe(201);
    }
    await runtime.settled();
    const listings: [string, string][] = [
      ["/v1/audit", "pk"],
      [`/v1/audit?subject=${device.id}`, "subject"],
      [`/v1/devices/${device.id}/timeline`, "subject"],
      ["/v1/keys", "gsi1pk"],
      ["/v1/automation/rules", "pk"],
    ];
    const answers: unknown[] = [];
    for (const [path, partition] of listings) {
      const first = await tenant.call("GET", `${path}${path.includes("?") ? "&" : "?"}limit=1`);
      expect(first.status, `${path}: ${first.text}`).toBe(200);
      expect(first.json.next, path).toBeTypeOf("string");
      const genuine = decode(first.json.next);
      expect((await tenant.call("GET", `${path}${path.includes("?") ? "&" : "?"}limit=1&cursor=${first.json.next}`)).status, path).toBe(
        200,
      );
      for (const forged of forgeries(genuine, partition)) {
        const answer = await tenant.call("GET", `${path}${path.includes("?") ? "&" : "?"}limit=1&cursor=${encode(forged)}`);
        answers.push([path, JSON.stringify(forged), answer.status, answer.json?.type]);
      }
    }
    expect(answers.length).toBeGreaterThan(10);
    expect(answers.filter((answer) => (answer as unknown[])[2] !== 400)).toEqual([]);
    expect(new Set(answers.map((answer) => (answer as unknown[])[3]))).toEqual(new Set(["urn:simroot:problem:request.invalid_cursor"]));
  });
});

describe("the last page of a listing (review 113)", () => {
  it("has no cursor, even when it is exactly full", async () => {
    const tenant = await tenantClient(runtime);
    // The tenant's keys: its admin's alone, then two.
    const one = await tenant.call("GET", "/v1/keys?limit=1");
    expect({ items: one.json.items.length, next: one.json.next }).toEqual({ items: 1, next: undefined });
    expect((await tenant.call("POST", "/v1/keys", { name: "second", role: "viewer" })).status).toBe(201);
    const first = await tenant.call("GET", "/v1/keys?limit=1");
    expect(first.json.items).toHaveLength(1);
    const second = await tenant.call("GET", `/v1/keys?limit=1&cursor=${first.json.next}`);
    expect({ items: second.json.items.length, next: second.json.next }).toEqual({ items: 1, next: undefined });
    // The two pages hold the two keys, once each.
    expect(new Set([first.json.items[0].keyId, second.json.items[0].keyId]).size).toBe(2);
  });
});

describe("source health (review 113)", () => {
  it("is listed page by page, every source that posted, however many", async () => {
    const tenant = await tenantClient(runtime);
    // What the ingest path notes for each request (ingest/source-health.ts), for 120 sources.
    const ids = Array.from({ length: 120 }, (_, n) => `src_01M9${String(n).padStart(22, "0")}`);
    for (let n = 0; n < ids.length; n += 40)
      await Promise.all(ids.slice(n, n + 40).map((id) => noteIngest(runtime.ports, tenant.tenant.id, id, { accepted: 2, rejected: 0 })));
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await tenant.call("GET", `/v1/source-health?limit=50${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status, page.text).toBe(200);
      seen.push(...page.json.items.map((item: { sourceId: string; accepted: number }) => item.sourceId));
      cursor = page.json.next;
      pages += 1;
    } while (cursor);
    expect({ pages, seen }).toEqual({ pages: 3, seen: ids });
    // Another tenant's cursor is refused.
    const other = await tenantClient(runtime);
    const first = await tenant.call("GET", "/v1/source-health?limit=1");
    expect((await other.call("GET", `/v1/source-health?cursor=${first.json.next}`)).status).toBe(400);
  });
});
