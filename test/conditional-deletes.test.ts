/**
 * Removing a rule or a webhook subscription is a write like any other: it needs the ETag the caller read (If-Match), so
 * a removal decided on a rule another admin has since changed (re-enabled, pointed elsewhere) is refused, not applied.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const onQuarantine = { source: ["simroot"], "detail-type": ["device.quarantined"] };

const resources = [
  {
    name: "an automation rule",
    path: "/v1/automation/rules",
    body: { name: "label quarantined", pattern: onQuarantine, actions: [{ type: "add-labels", labels: { seen: "yes" } }] },
    change: { name: "label quarantined devices" },
  },
  {
    name: "a webhook subscription",
    path: "/v1/webhooks",
    body: { url: "https://hooks.example.com/simroot", pattern: onQuarantine },
    change: { description: "to the SOC" },
  },
] as const;

describe.each(resources)("removing $name", ({ path, body, change }) => {
  it("needs If-Match (428), refuses a stale ETag (412) and changes nothing, then removes at the current one", async () => {
    const tenant = await tenantClient(runtime);
    const created = await tenant.call("POST", path, body);
    expect(created.status, created.text).toBe(201);
    const item = `${path}/${created.json.id}`;
    expect(created.headers.get("etag")).toBe('"1"');
    // Another admin changes it after it was read at "1".
    const changed = await tenant.call("PATCH", item, change, { "if-match": '"1"' });
    expect(changed.status, changed.text).toBe(200);

    const unconditional = await tenant.call("DELETE", item);
    expect(unconditional.status).toBe(428);
    expect(unconditional.headers.get("content-type")).toContain("application/problem+json");
    expect(unconditional.json.type).toBe("urn:simroot:problem:request.precondition_required");
    const stale = await tenant.call("DELETE", item, undefined, { "if-match": '"1"' });
    expect(stale.status).toBe(412);
    expect(stale.json.type).toBe("urn:simroot:problem:request.precondition_failed");
    expect((await tenant.call("GET", item)).json).toMatchObject({ revision: 2, ...change });

    const removed = await tenant.call("DELETE", item, undefined, { "if-match": '"2"' });
    expect(removed.status, removed.text).toBe(200);
    expect(removed.json).toEqual({ id: created.json.id });
    expect((await tenant.call("GET", item)).status).toBe(404);
  });

  it("takes * for whatever is current, and answers 404 to another tenant whatever its ETag", async () => {
    const owner = await tenantClient(runtime);
    const other = await tenantClient(runtime);
    const created = await owner.call("POST", path, body);
    const item = `${path}/${created.json.id}`;
    expect((await other.call("DELETE", item, undefined, { "if-match": "*" })).status).toBe(404);
    expect((await other.call("DELETE", item, undefined, { "if-match": '"1"' })).status).toBe(404);
    expect((await owner.call("GET", item)).status).toBe(200);
    expect((await owner.call("DELETE", item, undefined, { "if-match": "*" })).status).toBe(200);
    expect((await owner.call("GET", item)).status).toBe(404);
  });
});
