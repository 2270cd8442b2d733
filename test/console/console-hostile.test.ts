/**
 * Review 139: what a link someone sends, or a device's own events, can do to an operator using the console, in a real
 * browser against the control plane on a real port (the harness of console.test.ts).
 */
import { describe, expect, it } from "vitest";
import { simrootSource, tenantClient } from "../support/runtime.ts";
import { browserAvailable, consoleHarness } from "./harness.ts";

describe.runIf(browserAvailable)("the web console against hostile links and devices (review 139)", () => {
  const harness = consoleHarness();

  it("stays usable on a link whose address holds a malformed escape", async () => {
    // `#/devices/%E0` (anyone's link, or a truncated copy of a real one): decoding the route threw, nothing was drawn, not
    // even Sign out, and reloading drew nothing again: the tab's console was gone until its user edited the address.
    const tenant = await tenantClient(harness.runtime, "bad-link");
    const page = await harness.browser.newPage({ viewport: { width: 1366, height: 900 } });
    await harness.signIn(page, tenant.token);
    for (const link of ["#/devices/%E0%A4%A", "#/%ZZ"]) {
      await page.goto(`${harness.runtime.url}/console/${link}`);
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
    const tenant = await tenantClient(harness.runtime, "flapping");
    const read = await tenant.call("GET", "/v1/tenant");
    const limited = await tenant.call(
      "PATCH",
      "/v1/tenant/settings",
      { rateLimits: { apiKeyPerMinute: 300 } },
      { "if-match": read.headers.get("etag")! },
    );
    expect(limited.status, limited.text).toBe(200);
    const device = (await tenant.call("POST", "/v1/devices", { name: "flapping-meter", imsi: "208011390000001" })).json;
    const post = await simrootSource(harness.runtime, tenant);
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
    const page = await harness.browser.newPage({ viewport: { width: 1366, height: 900 } });
    await page.route(
      (url) => url.pathname === `/v1/devices/${device.id}/timeline`,
      async (route) => {
        timelineRequests++;
        // Asked of the control plane too, with the page's key: each page counts against the key as a real one would.
        await fetch(`${harness.runtime.url}/v1/devices/${device.id}/timeline?limit=1`, {
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
    await harness.signIn(page, tenant.token);
    await page.goto(`${harness.runtime.url}/console/#/devices/${encodeURIComponent(device.id)}`);
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

  /** Lowers the tenant's limit of each API key to `perMinute` (6,000 by default), so that a few changes show what many would. */
  async function limitKeys(tenant: Awaited<ReturnType<typeof tenantClient>>, perMinute: number) {
    const read = await tenant.call("GET", "/v1/tenant");
    const limited = await tenant.call(
      "PATCH",
      "/v1/tenant/settings",
      { rateLimits: { apiKeyPerMinute: perMinute } },
      { "if-match": read.headers.get("etag")! },
    );
    expect(limited.status, limited.text).toBe(200);
  }

  it("keeps the open audit page within its key's rate limit while the fleet's changes keep coming, and shows a revocation at once", async () => {
    // The audit page read its trail, its dead letters (up to 6 pages), the sources and their health again on every live
    // change of any kind, each read begun whether or not one was under way: any device flapping its session made the open
    // page spend its key's requests (15 a change here), and the operator's own use of the key was refused 429. The dead
    // letters (550 parked, 6 pages) are stood in for; the changes are real, 20 attaches 300 ms apart, and the tenant's
    // limit is lowered to 150 requests a minute.
    const tenant = await tenantClient(harness.runtime, "audit-flapping");
    await limitKeys(tenant, 150);
    const device = (await tenant.call("POST", "/v1/devices", { name: "audited-meter", imsi: "208011390000002" })).json;
    const post = await simrootSource(harness.runtime, tenant);
    let parkedRequests = 0;
    const page = await harness.browser.newPage({ viewport: { width: 1366, height: 900 } });
    await page.route(
      (url) => url.pathname === "/v1/dead-letters",
      async (route) => {
        parkedRequests++;
        // Asked of the control plane too, with the page's key: each page counts against the key as a real one would.
        await fetch(`${harness.runtime.url}/v1/dead-letters?limit=1`, {
          headers: { authorization: route.request().headers().authorization ?? "" },
        }).catch(() => {});
        const url = new URL(route.request().url());
        const from = Number(url.searchParams.get("cursor") ?? "0");
        const to = Math.min(550, from + Number(url.searchParams.get("limit") ?? "50"));
        const items = Array.from({ length: to - from }, (_, n) => ({
          id: `park_${from + n}`,
          type: "sim.attached",
          subject: `imsi:2080113900${String(from + n).padStart(5, "0")}`,
          reason: "unknown_device",
          sourceId: "src_core",
          parkedAt: new Date().toISOString(),
        }));
        await route
          .fulfill({
            status: 200,
            contentType: "application/json",
            body: JSON.stringify({ items, ...(to < 550 ? { next: String(to) } : {}) }),
          })
          .catch(() => {});
      },
    );
    await harness.signIn(page, tenant.token);
    await page.goto(`${harness.runtime.url}/console/#/audit`);
    const caption = page.locator("caption").filter({ hasText: "Parked events" });
    await expect.poll(() => caption.textContent(), { timeout: 10_000 }).toContain("Parked events (500+)");
    await page.getByText("Live", { exact: true }).waitFor({ timeout: 10_000 });

    const before = parkedRequests;
    const began = Date.now();
    for (let n = 0; n < 20; n++) {
      await post({
        type: "sim.attached",
        dedupeKey: `audit-flap-${n}`,
        occurredAt: new Date(Date.now() - 1_000).toISOString(),
        device: { imsi: "208011390000002" },
        sourceType: "sim.attached",
        data: { bearer: "cellular", ipv4: `10.39.1.${n + 1}` },
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const duringFlapping = parkedRequests - before;
    const flappedMs = Date.now() - began;
    // A revocation is in the trail as soon as it was before: the trail is still read on every change.
    expect((await tenant.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    const trail = page.getByRole("table", { name: "Audit records in chain order" });
    await expect.poll(() => trail.textContent(), { timeout: 3_000 }).toContain("device.revoked");
    // The operator uses the key the page has been using.
    await page.getByRole("button", { name: "Verify the hash chain" }).click();
    await expect
      .poll(() => page.getByTestId("chain-result").textContent(), { timeout: 10_000 })
      .toMatch(/^The chain is intact: \d+ records/);
    // One read of the 6 pages begun at most every 5 s while the changes kept coming, whatever their number.
    expect(duringFlapping).toBeLessThanOrEqual(6 * (Math.ceil(flappedMs / 5_000) + 1));
    await page.close();
  }, 120_000);

  it("reads the fleet's list one read at a time however many large bursts of changes come, and still shows the last", async () => {
    // A live change naming more than 50 devices makes the fleet page read its whole list again (up to 200 pages), and
    // each such burst began a read beside those under way: bursts a few hundred milliseconds apart on a large fleet
    // piled up reads of the list, and the page spent its key's rate limit. The list (5,000 devices, 50 pages) and the
    // live stream (20 bursts of 60 devices, 300 ms apart) are stood in for; each page of the list is asked of the
    // control plane too, with the page's key, and the tenant's limit is lowered to 600 requests a minute.
    const tenant = await tenantClient(harness.runtime, "fleet-bursts");
    await limitKeys(tenant, 600);
    const real = (await tenant.call("POST", "/v1/devices", { name: "template", imsi: "208011390000003" })).json;
    const start = Date.parse(real.createdAt);
    const fleet = Array.from({ length: 5_000 }, (_, n) => ({
      ...real,
      id: `dev_burst${String(n).padStart(5, "0")}`,
      name: `burst-${n}`,
      imsi: undefined,
      createdAt: new Date(start + n).toISOString(),
    }));
    const page = await harness.browser.newPage({ viewport: { width: 1366, height: 900 } });
    let listed = 0;
    let reading = 0;
    let mostAtOnce = 0;
    let revokedFirst = false;
    await page.route(
      (url) => url.pathname === "/v1/devices",
      async (route) => {
        listed++;
        const url = new URL(route.request().url());
        const from = Number(url.searchParams.get("cursor") ?? "0");
        if (from === 0) mostAtOnce = Math.max(mostAtOnce, ++reading);
        await fetch(`${harness.runtime.url}/v1/devices?limit=1`, {
          headers: { authorization: route.request().headers().authorization ?? "" },
        }).catch(() => {});
        const to = Math.min(fleet.length, from + Number(url.searchParams.get("limit") ?? "50"));
        const items = fleet
          .slice(from, to)
          .map((device, n) => (revokedFirst && from + n === 0 ? { ...device, state: "revoked", revision: device.revision + 1 } : device));
        if (to === fleet.length) reading--;
        await route
          .fulfill({
            status: 200,
            contentType: "application/json",
            body: JSON.stringify({ items, ...(to < fleet.length ? { next: String(to) } : {}) }),
          })
          .catch(() => {});
      },
    );
    let bursts = 0;
    await page.route(
      (url) => url.pathname === "/v1/live",
      async (route) => {
        if (bursts === 20) return route.continue();
        await new Promise((resolve) => setTimeout(resolve, 300));
        const n = ++bursts;
        // The last burst names a device revoked meanwhile: a read under way may have passed it already.
        if (n === 20) revokedFirst = true;
        const changes = fleet.slice(0, 60).map((device) => ({ kind: "device", key: device.id }));
        await route
          .fulfill({
            status: 200,
            contentType: "text/event-stream",
            body: `event: change\nid: ${1_000 + n}\ndata: ${JSON.stringify({ version: 1_000 + n, changes })}\n\n`,
          })
          .catch(() => {});
      },
    );
    await harness.signIn(page, tenant.token);
    const first = page.locator(`tr[data-device="${fleet[0]!.id}"] .badge`);
    await expect.poll(() => bursts, { timeout: 30_000 }).toBe(20);
    // The revocation of the last burst is shown, by the read that follows the one under way.
    await expect.poll(() => first.textContent(), { timeout: 30_000 }).toBe("revoked");
    await expect.poll(() => reading, { timeout: 30_000 }).toBe(0);
    // Never two reads of the list at once, and the key the page uses is still answered.
    expect(mostAtOnce).toBe(1);
    const answer = await tenant.call("GET", "/v1/tenant");
    expect(answer.status, `${answer.text} after ${listed} pages of the list`).toBe(200);
    await page.close();
  }, 120_000);

  it("shows a device's revocation on its open page within 2 s however often changes naming the device keep coming", async () => {
    // Every change naming the device restarted the 150 ms wait before its page read the device again: changes coming
    // more often than that (a device or its source reporting every 100 ms) put the read off for as long as they kept
    // coming, and the operator watching the device never saw that it was revoked. The live stream is stood in for in the
    // page itself (one response per change, through the test's routing, came 100 to 600 ms apart on a busy machine): once
    // asked, a change naming the device every 100 ms for as long as the test runs. The revocation is real.
    const tenant = await tenantClient(harness.runtime, "chatty-device");
    const device = (await tenant.call("POST", "/v1/devices", { name: "chatty-meter", imsi: "208011390000004" })).json;
    const page = await harness.browser.newPage({ viewport: { width: 1366, height: 900 } });
    /** The page's own globals the stand-in uses (run in the page: the test's types have no DOM). */
    type Chatty = { fetch: typeof fetch; location: { href: string }; chattyDevice?: string; chattyChanges: number };
    await page.addInitScript(() => {
      const chatty = globalThis as unknown as Chatty;
      chatty.chattyChanges = 0;
      const original = chatty.fetch.bind(globalThis);
      chatty.fetch = (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
        const url = new URL(input instanceof Request ? input.url : String(input), chatty.location.href);
        if (url.pathname !== "/v1/live") return original(input, init);
        const encoder = new TextEncoder();
        let timer: ReturnType<typeof setInterval> | undefined;
        const body = new ReadableStream<Uint8Array>({
          start(stream) {
            timer = setInterval(() => {
              const key = chatty.chattyDevice;
              if (!key) return;
              const version = 3_000 + ++chatty.chattyChanges;
              const change = JSON.stringify({ version, changes: [{ kind: "device", key }] });
              stream.enqueue(encoder.encode(`event: change\nid: ${version}\ndata: ${change}\n\n`));
            }, 100);
            init?.signal?.addEventListener("abort", () => clearInterval(timer));
          },
          cancel: () => clearInterval(timer),
        });
        return Promise.resolve(new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } }));
      };
    });
    const changes = () => page.evaluate(() => (globalThis as unknown as Chatty).chattyChanges);
    await harness.signIn(page, tenant.token);
    await page.goto(`${harness.runtime.url}/console/#/devices/${encodeURIComponent(device.id)}`);
    const state = page.getByTestId("device-state");
    await expect.poll(() => state.textContent(), { timeout: 10_000 }).toBe("active");
    await page.evaluate((id) => {
      (globalThis as unknown as Chatty).chattyDevice = id;
    }, device.id);
    await expect.poll(changes, { timeout: 5_000 }).toBeGreaterThanOrEqual(10);

    expect((await tenant.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    await expect.poll(() => state.textContent(), { timeout: 2_000 }).toBe("revoked");
    // Shown while the changes were still coming, not once they stopped.
    const shownAt = await changes();
    await expect.poll(changes, { timeout: 2_000 }).toBeGreaterThan(shownAt);
    await page.close();
  }, 120_000);
});
