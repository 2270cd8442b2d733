/**
 * The console in a real browser, against the control plane on a real port: a user signs in
 * with an API key, finds a device, quarantines it and sees the enforcement point deny it,
 * edits a policy with its preview, verifies the audit chain, and watches a change appear
 * without reloading. Every page is checked with axe; screenshots land in test-artifacts/.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsole } from "@simroot/console/build";
import { readConfig } from "@simroot/pep/daemon/config";
import { startPep, type RunningPep } from "@simroot/pep/daemon/main";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "../support/runtime.ts";
import { chromiumPath, launch, screenshot, seriousViolations } from "./browser.ts";

// CI installs Chromium (.ci/run); elsewhere a machine without it skips these tests, loudly.
const browserAvailable = chromiumPath !== undefined || process.env.CI === "true";
if (!browserAvailable) console.warn("console browser tests skipped: no Chromium (apt-get install chromium)");

let runtime: TestRuntime;
let browser: Browser;
let tenant: Awaited<ReturnType<typeof tenantClient>>;
let pep: RunningPep;
let meter: { id: string };
let meter2: { id: string };
const telemetry = {
  name: "Meters send telemetry",
  selector: { matchLabels: { fleet: "meters" } },
  destinations: [{ fqdn: "ingest.example.com", ports: [8883], protocol: "tcp" }],
  effect: "allow",
};

describe.runIf(browserAvailable)("the web console", () => {
  beforeAll(async () => {
    await buildConsole();
    runtime = await startTestRuntime({ port: 0 });
    tenant = await tenantClient(runtime, "console");
    meter = (
      await tenant.call("POST", "/v1/devices", { name: "meter-lyon-1", imsi: "208011234567890", labels: { fleet: "meters", site: "lyon" } })
    ).json;
    meter2 = (
      await tenant.call("POST", "/v1/devices", {
        name: "meter-porto-2",
        imsi: "208011234567893",
        labels: { fleet: "meters", site: "porto" },
      })
    ).json;
    await tenant.call("POST", "/v1/devices", {
      name: "tracker-porto-1",
      imsi: "208011234567891",
      labels: { fleet: "trackers", site: "porto" },
    });
    expect((await tenant.call("POST", "/v1/policies", telemetry)).status).toBe(201);

    const key = await tenant.call("POST", "/v1/keys", { name: "edge", role: "pep" });
    const keys = await call(runtime, key.json.token, "GET", "/v1/feed/keys");
    const folder = await mkdtemp(join(tmpdir(), "simroot-console-pep-"));
    await writeFile(join(folder, "feed.pem"), keys.json.keys[0].publicKeyPem);
    const config = readConfig(
      [
        "--state",
        join(folder, "state.json"),
        "--public-key",
        join(folder, "feed.pem"),
        "--tenant",
        tenant.tenant.id,
        "--port",
        "0",
        "--admin-port",
        "0",
        "--flow-interval",
        "3600",
      ],
      { SIMROOT_URL: runtime.url!, SIMROOT_PEP_KEY: key.json.token },
    )!;
    pep = await startPep(config);
    // Traffic the PEP saw, reported as it reports flows: the map and the preview read these.
    const now = new Date().toISOString();
    const report = {
      pepId: "edge",
      windowStart: now,
      windowEnd: now,
      flows: [
        {
          deviceId: meter.id,
          destination: "ingest.example.com",
          port: 8883,
          protocol: "tcp",
          decision: "allow",
          reason: "allow.rule",
          count: 12,
          bytes: 4096,
        },
        {
          deviceId: meter2.id,
          destination: "ingest.example.com",
          port: 8883,
          protocol: "tcp",
          decision: "allow",
          reason: "allow.rule",
          count: 7,
          bytes: 2048,
        },
        {
          deviceId: meter.id,
          destination: "xmr.pool.example.net",
          port: 443,
          protocol: "tcp",
          decision: "deny",
          reason: "deny.default",
          count: 3,
          bytes: 0,
        },
      ],
    };
    expect((await call(runtime, key.json.token, "POST", "/v1/flows", report)).status).toBe(202);
    browser = await launch();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await pep?.stop();
    await runtime?.stop();
  });

  async function signedIn(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    page.on("console", (message) => message.type() === "error" && !message.text().includes("401") && errors.push(message.text()));
    await page.goto(`${runtime.url}/console/`);
    await page.getByLabel("API key").fill(tenant.token);
    await page.getByRole("button", { name: "Open the console" }).click();
    await page.getByRole("heading", { name: "Fleet", level: 1 }).waitFor();
    Object.assign(page, { errors });
    return page;
  }

  it("refuses nothing but a wrong key: a bad key brings the sign-in back", async () => {
    const page = await browser.newPage();
    await page.goto(`${runtime.url}/console/`);
    await page.getByLabel("API key").fill("sr_key_forged_0000");
    await page.getByRole("button", { name: "Open the console" }).click();
    await expect.poll(() => page.getByLabel("API key").isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
  });

  it("signs out when the live stream's key is refused, and stops asking (review 91)", async () => {
    // Retried every 2 s, a tab left open with a revoked key spent its address's failed authentications at the control
    // plane, which PEPs behind the same address share. Here only the live stream is refused, as an idle page's would be.
    const page = await browser.newPage();
    let live = 0;
    await page.route("**/v1/live*", (route) => {
      live++;
      return route.fulfill({ status: 401, contentType: "application/problem+json", body: JSON.stringify({ status: 401 }) });
    });
    await page.goto(`${runtime.url}/console/`);
    await page.getByLabel("API key").fill(tenant.token);
    await page.getByRole("button", { name: "Open the console" }).click();
    await expect.poll(() => page.getByLabel("API key").isVisible(), { timeout: 10_000 }).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    expect(live).toBe(1);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.close();
  });

  it("leaves nothing of the tenant in the browser's HTTP cache after sign-out (review 79)", async () => {
    const page = await signedIn();
    await expect.poll(() => page.locator("tbody").textContent(), { timeout: 10_000 }).toContain("meter-lyon-1");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API key").waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    // What the fleet page read, asked of the cache alone, with no key: any script of the origin, or anyone at the
    // keyboard of a shared machine, could read the fleet back after sign-out.
    const cached = await page.evaluate(async () => {
      try {
        const answer = await fetch("/v1/devices?limit=100", { cache: "only-if-cached", mode: "same-origin" });
        return `${answer.status} ${await answer.text()}`;
      } catch {
        return "not cached";
      }
    });
    expect(cached).toBe("not cached");
    await page.close();
  });

  it("never lets a link's key replace the key a tab is signed in with, nor sign a tab in unasked (reviews 79, 90)", async () => {
    // Anyone's link (`/console/#key=...`, as the demo prints) signed whoever followed it in to the link's tenant, in
    // place of their own and with nothing saying so: what they then did (quarantine, a policy) went to that tenant.
    const other = await tenantClient(runtime, "elsewhere");
    const page = await signedIn();
    await expect.poll(() => page.getByTestId("tenant").textContent(), { timeout: 10_000 }).toBe("Tenant: console");
    // As a link followed in this tab would (evaluated as text: this file is typed for Node, not the DOM).
    await page.evaluate(`location.hash = ${JSON.stringify(`key=${encodeURIComponent(other.token)}`)}`);
    await page.reload();
    await page.getByRole("heading", { name: "Fleet", level: 1 }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("simroot.apiKey"))).toBe(tenant.token);
    expect(page.url()).not.toContain("key=");
    await expect.poll(() => page.locator("tbody").textContent(), { timeout: 10_000 }).toContain("meter-lyon-1");
    await expect.poll(() => page.getByTestId("tenant").textContent()).toBe("Tenant: console");
    await page.close();

    // A tab holding no key is offered the link's (the demo's link): it names the tenant and waits for a click, since a
    // link followed unawares would otherwise sign the tab in to its sender's tenant (review 90's open item).
    const fresh = await browser.newPage();
    await fresh.goto(`${runtime.url}/console/#key=${encodeURIComponent(other.token)}`);
    const offer = fresh.getByRole("button", { name: "Open elsewhere's console" });
    await offer.waitFor({ timeout: 10_000 });
    expect(fresh.url()).not.toContain("key=");
    expect(await fresh.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await fresh.getByTestId("tenant").count()).toBe(0);
    expect(await seriousViolations(fresh)).toEqual([]);
    await offer.click();
    await expect.poll(() => fresh.getByTestId("tenant").textContent(), { timeout: 10_000 }).toBe("Tenant: elsewhere");
    expect(await fresh.evaluate(() => sessionStorage.getItem("simroot.apiKey"))).toBe(other.token);
    await fresh.close();

    // Refused, the offer leaves the tab to the key its user types.
    const declined = await browser.newPage();
    await declined.goto(`${runtime.url}/console/#key=${encodeURIComponent(other.token)}`);
    await declined.getByRole("button", { name: "Open elsewhere's console" }).waitFor({ timeout: 10_000 });
    await declined.getByLabel("API key").fill(tenant.token);
    await declined.getByRole("button", { name: "Open the console" }).click();
    await expect.poll(() => declined.getByTestId("tenant").textContent(), { timeout: 10_000 }).toBe("Tenant: console");
    await declined.close();
  });

  it("renders the API reference under its CSP, which refuses inline script (review 79)", async () => {
    const page = await browser.newPage();
    const refused: string[] = [];
    page.on("console", (message) => message.text().includes("Content Security Policy") && refused.push(message.text()));
    page.on("pageerror", (error) => refused.push(String(error)));
    const answer = await page.goto(`${runtime.url}/docs`);
    expect(answer?.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");
    await page.getByText("List the tenant's API keys").first().waitFor({ timeout: 20_000 });
    // What Scalar does on the page (styles, requests, fonts, workers) is allowed by the policy: nothing was refused.
    await page.waitForTimeout(1_000);
    expect(refused).toEqual([]);
    await page.close();
  });

  it("finds a device, quarantines it with a reason, and the PEP denies it", async () => {
    await expect
      .poll(
        () => pep.engine.decide({ deviceId: meter.id, destination: { fqdn: "ingest.example.com" }, port: 8883, protocol: "tcp" }).allow,
        { timeout: 10_000 },
      )
      .toBe(true);
    const page = await signedIn();
    await page.getByRole("searchbox", { name: "Search" }).fill("meter-lyon");
    // The meter of Lyon is the one the search finds; the preview below is about the other meter's traffic.
    await expect.poll(() => page.locator("tbody tr").count()).toBe(1);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "fleet");

    await page.getByRole("link", { name: "meter-lyon-1" }).click();
    await expect.poll(() => page.getByTestId("device-state").textContent()).toBe("active");
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByLabel("Reason (kept in the audit trail)").fill("calls an unfamiliar server");
    await page.getByRole("button", { name: "Quarantine" }).click();
    await expect.poll(() => page.getByTestId("device-state").textContent(), { timeout: 10_000 }).toBe("quarantined");
    await screenshot(page, "device-quarantined");

    await expect
      .poll(
        () => pep.engine.decide({ deviceId: meter.id, destination: { fqdn: "ingest.example.com" }, port: 8883, protocol: "tcp" }).reason,
        { timeout: 5_000 },
      )
      .toBe("deny.quarantined");
    const timeline = page.getByRole("list", { name: "Timeline, newest first" });
    await expect.poll(() => timeline.textContent(), { timeout: 10_000 }).toContain("device.quarantined");
    await page.close();
  });

  it("previews a policy change against reported traffic before saving it", async () => {
    const page = await signedIn();
    await page.getByRole("link", { name: "Policies and grants" }).click();
    await page.getByRole("button", { name: `Edit ${telemetry.name}` }).click();
    const editor = page.getByLabel("Rule (JSON: name, selector, destinations, conditions, effect)");
    const edited = JSON.parse(await editor.inputValue());
    edited.destinations[0].ports = [443];
    await editor.fill(JSON.stringify(edited, null, 2));
    await page.getByRole("button", { name: "Preview", exact: true }).click();
    const preview = page.locator(".preview");
    await expect.poll(() => preview.textContent(), { timeout: 10_000 }).toContain("Newly denied (1)");
    expect(await preview.textContent()).toContain(`${meter2.id} → ingest.example.com:8883/tcp ×7`);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "policy-preview");

    await editor.fill('{ "name": "broken" }');
    await page.getByRole("button", { name: "Preview", exact: true }).click();
    await expect.poll(() => page.getByRole("alert").first().textContent()).toMatch(/selector|destinations|effect/);

    edited.destinations[0].ports = [8883, 8884];
    await editor.fill(JSON.stringify(edited, null, 2));
    await page.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => page.locator("tbody").first().textContent(), { timeout: 10_000 }).toContain("8884");
    const saved = await tenant.call("GET", "/v1/policies");
    expect(saved.json.items[0].destinations[0].ports).toEqual([8883, 8884]);
    await page.close();
  });

  it("draws the traffic map with denied and new edges, and answers what-if from an edge", async () => {
    const page = await signedIn();
    await page.getByRole("link", { name: "Traffic map" }).click();
    const edges = page.locator("table tbody tr");
    await expect.poll(() => edges.count(), { timeout: 10_000 }).toBe(2);
    expect(await page.locator("path.edge.deny").count()).toBe(1);
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByRole("button", { name: "What-if for fleet=meters → xmr.pool.example.net:443/tcp" }).click();
    await page.getByRole("button", { name: "Decide" }).click();
    await expect.poll(() => page.locator(".whatif [role=status]").textContent(), { timeout: 10_000 }).toContain("Denied");
    await screenshot(page, "traffic-map");
    await page.close();
  });

  it("verifies the audit chain and shows sources and dead letters", async () => {
    const page = await signedIn();
    await page.getByRole("link", { name: "Audit and sources" }).click();
    await page.getByRole("button", { name: "Verify the hash chain" }).click();
    await expect
      .poll(() => page.getByTestId("chain-result").textContent(), { timeout: 10_000 })
      .toMatch(/^The chain is intact: \d+ records/);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "audit");
    await page.close();
  });

  it("lists the webhook subscriptions with the role each is sent as, and the rules with theirs (review 90)", async () => {
    const ops = await tenant.call("POST", "/v1/keys", { name: "ops", role: "operator" });
    const pattern = { source: ["simroot"], "detail-type": ["incident.opened"] };
    const admins = await tenant.call("POST", "/v1/webhooks", { url: "https://siem.example.com/simroot", pattern });
    expect(admins.status, admins.text).toBe(201);
    const operators = await call(runtime, ops.json.token, "POST", "/v1/webhooks", { url: "https://ops.example.com/hook", pattern });
    expect(operators.status, operators.text).toBe(201);
    const rule = await call(runtime, ops.json.token, "POST", "/v1/automation/rules", {
      name: "contain on incidents",
      pattern,
      actions: [{ type: "quarantine" }],
      dryRun: true,
    });
    expect(rule.status, rule.text).toBe(201);

    const page = await signedIn();
    await page.getByRole("link", { name: "Webhooks and rules" }).click();
    const subscriptions = page.getByRole("table", { name: /Webhook subscriptions/ });
    // The first cell after the URL: the role whose reads decide what the subscription is sent.
    const roleOf = (url: string) =>
      subscriptions
        .getByRole("row", { name: new RegExp(url) })
        .getByRole("cell")
        .first()
        .textContent();
    await expect.poll(() => roleOf("ops.example.com"), { timeout: 10_000 }).toBe("operator");
    expect(await roleOf("siem.example.com")).toBe("admin");
    const rules = page.getByRole("table", { name: /Automation rules/ });
    expect(
      await rules
        .getByRole("row", { name: /contain on incidents/ })
        .getByRole("cell")
        .first()
        .textContent(),
    ).toBe("operator");
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "webhooks");
    await page.close();
  });

  it("shows a change without a reload", async () => {
    const page = await signedIn();
    await page.getByText("Live", { exact: true }).waitFor({ timeout: 10_000 });
    const rows = page.locator("tbody tr");
    // Counted once the list shows the tenant's devices (it may still be loading when the live status comes up).
    const before = (await tenant.call("GET", "/v1/devices?limit=100")).json.items.length as number;
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(before);
    await tenant.call("POST", "/v1/devices", {
      name: "camera-berlin-1",
      imsi: "208011234567892",
      labels: { fleet: "cameras", site: "berlin" },
    });
    // Without a reload is the point; how soon is bench:console's. On a loaded 2-core CI machine it took over 5 s
    // (at this commit and before it), so the wait is generous.
    await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(before + 1);
    expect(await page.locator("tbody").textContent()).toContain("camera-berlin-1");
    expect((page as unknown as { errors: string[] }).errors).toEqual([]);
    await page.close();
  });
});
