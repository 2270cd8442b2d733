/**
 * Review 139: what a link someone sends, or a device's own events, can do to an operator using the console, in a real
 * browser against the control plane on a real port (the harness of console.test.ts).
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsole } from "@simroot/console/build";
import { simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "../support/runtime.ts";
import { chromiumPath, launch } from "./browser.ts";

const browserAvailable = chromiumPath !== undefined || process.env.CI === "true";

let runtime: TestRuntime;
let browser: Browser;

describe.runIf(browserAvailable)("the web console against hostile links and devices (review 139)", () => {
  beforeAll(async () => {
    await buildConsole();
    runtime = await startTestRuntime({ port: 0 });
    browser = await launch();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await runtime?.stop();
  });

  async function signIn(page: Page, token: string) {
    await page.goto(`${runtime.url}/console/`);
    await page.getByLabel("API key").fill(token);
    await page.getByRole("button", { name: "Open the console" }).click();
    await page.getByRole("heading", { name: "Fleet", level: 1 }).waitFor();
  }

  it("stays usable on a link whose address holds a malformed escape", async () => {
    // `#/devices/%E0` (anyone's link, or a truncated copy of a real one): decoding the route threw, nothing was drawn, not
    // even Sign out, and reloading drew nothing again: the tab's console was gone until its user edited the address.
    const tenant = await tenantClient(runtime, "bad-link");
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    await signIn(page, tenant.token);
    for (const link of ["#/devices/%E0%A4%A", "#/%ZZ"]) {
      await page.goto(`${runtime.url}/console/${link}`);
      await page.reload();
      await page.getByRole("button", { name: "Sign out" }).waitFor({ timeout: 10_000 });
      await page.getByRole("link", { name: "Fleet", exact: true }).click();
      await page.getByRole("heading", { name: "Fleet", level: 1 }).waitFor({ timeout: 10_000 });
    }
    await page.close();
  });

  it("keeps a device's open page within its key's rate limit while the device's events keep coming", async () => {
    // A device's page read its whole timeline (up to 100 requests of 500) on every live change naming the device, each
    // read begun whether or not one was under way. A device flapping its session (or its source posting for it) made an
    // open page spend its key's requests without bound: at a change a second and 40 pages, 2,400 a minute, and the
    // operator's Quarantine of that very device was answered 429. The timeline (20,000 entries, 40 pages) is stood in
    // for; the device's changes are real, 20 attaches 300 ms apart, and the tenant's limit is lowered to 300 requests a
    // minute (6,000 by default) so that 20 changes show what 400 would.
    const tenant = await tenantClient(runtime, "flapping");
    const read = await tenant.call("GET", "/v1/tenant");
    const limited = await tenant.call(
      "PATCH",
      "/v1/tenant/settings",
      { rateLimits: { apiKeyPerMinute: 300 } },
      { "if-match": read.headers.get("etag")! },
    );
    expect(limited.status, limited.text).toBe(200);
    const device = (await tenant.call("POST", "/v1/devices", { name: "flapping-meter", imsi: "208011390000001" })).json;
    const post = await simrootSource(runtime, tenant);
    const start = Date.now() - 20_000 * 60_000;
    const entries = Array.from({ length: 20_000 }, (_, n) => ({
      seq: n + 1,
      eventId: `evt_${n}`,
      type: n % 2 === 0 ? "sim.attached" : "sim.detached",
      time: new Date(start + n * 60_000).toISOString(),
      actor: "source:core",
      data: {},
    }));
    let timelineRequests = 0;
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    await page.route(
      (url) => url.pathname === `/v1/devices/${device.id}/timeline`,
      async (route) => {
        timelineRequests++;
        // Asked of the control plane too, with the page's key: each page counts against the key as a real one would.
        await fetch(`${runtime.url}/v1/devices/${device.id}/timeline?limit=1`, {
          headers: { authorization: route.request().headers().authorization ?? "" },
        }).catch(() => {});
        const url = new URL(route.request().url());
        const from = Number(url.searchParams.get("cursor") ?? "0");
        const to = Math.min(entries.length, from + Number(url.searchParams.get("limit") ?? "50"));
        await new Promise((resolve) => setTimeout(resolve, 20));
        await route
          .fulfill({
            status: 200,
            contentType: "application/json",
            body: JSON.stringify({ items: entries.slice(from, to), ...(to < entries.length ? { next: String(to) } : {}) }),
          })
          .catch(() => {});
      },
    );
    await signIn(page, tenant.token);
    await page.goto(`${runtime.url}/console/#/devices/${encodeURIComponent(device.id)}`);
    const timeline = page.getByRole("list", { name: "Timeline, newest first" });
    await expect.poll(() => timeline.locator("li").count(), { timeout: 20_000 }).toBeGreaterThan(0);

    const before = timelineRequests;
    const began = Date.now();
    for (let n = 0; n < 20; n++) {
      await post({
        type: "sim.attached",
        dedupeKey: `flap-${n}`,
        occurredAt: new Date(Date.now() - 1_000).toISOString(),
        device: { imsi: "208011390000001" },
        sourceType: "sim.attached",
        data: { bearer: "cellular", ipv4: `10.39.0.${n + 1}` },
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const duringFlapping = timelineRequests - before;
    const flappedMs = Date.now() - began;
    // Its newest session is shown: the page still follows the device.
    await expect
      .poll(() => page.getByRole("table", { name: "Sessions per bearer" }).textContent(), { timeout: 10_000 })
      .toContain("10.39.0.20");
    // The operator acts on the device, with the key the page has been using.
    await page.getByLabel("Reason (kept in the audit trail)").fill("flaps its session");
    await page.getByRole("button", { name: "Quarantine" }).click();
    await expect.poll(() => page.getByTestId("device-state").textContent(), { timeout: 10_000 }).toBe("quarantined");
    // One read of the 40 pages begun at most every 5 s while the changes kept coming, whatever their number.
    expect(duringFlapping).toBeLessThanOrEqual(40 * (Math.ceil(flappedMs / 5_000) + 1));
    await page.close();
  }, 120_000);
});
