/**
 * Review 139's leftovers: what an operator's console does when a page cannot be drawn, in a real browser against the
 * control plane on a real port (the harness of console.test.ts).
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsole } from "@simroot/console/build";
import { startTestRuntime, tenantClient, type TestRuntime } from "../support/runtime.ts";
import { chromiumPath, launch, screenshot, seriousViolations } from "./browser.ts";

const browserAvailable = chromiumPath !== undefined || process.env.CI === "true";

let runtime: TestRuntime;
let browser: Browser;

describe.runIf(browserAvailable)("the web console's page failures (review 139)", () => {
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

  it("says which page failed to draw, keeps the navigation and Sign out, logs the error, and draws it again on Try again", async () => {
    // A page that threw while drawing took the whole console with it: a blank tab, no navigation, no Sign out, nothing
    // saying what happened. Here the device's answer has a shape the page does not know (no identity, no ICCIDs: an
    // answer of another release, a proxy's rewrite), as the browser receives it.
    const tenant = await tenantClient(runtime, "odd-answer");
    const device = (await tenant.call("POST", "/v1/devices", { name: "odd-meter", imsi: "208011390000101" })).json;
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const logged: string[] = [];
    page.on("console", (message) => message.type() === "error" && logged.push(message.text()));
    const odd = (url: URL) => url.pathname === `/v1/devices/${device.id}`;
    await page.route(odd, (route) =>
      route.fulfill({
        status: 200,
        contentType: "application/json",
        body: JSON.stringify({ id: device.id, name: "odd-meter", state: "active" }),
      }),
    );
    await signIn(page, tenant.token);
    await page.goto(`${runtime.url}/console/#/devices/${encodeURIComponent(device.id)}`);
    const alert = page.getByRole("alert");
    await alert.waitFor({ timeout: 10_000 });
    expect(await alert.textContent()).toContain("The device page could not be shown");
    await screenshot(page, "page-failed");
    expect(await seriousViolations(page)).toEqual([]);
    // Not swallowed: the browser's console has it, with what threw.
    expect(logged.join("\n")).toMatch(/simroot console: the device page failed to draw[\s\S]*TypeError/);
    await page.getByRole("button", { name: "Sign out" }).waitFor();

    // The navigation still leads elsewhere, and back.
    await page.getByRole("link", { name: "Traffic map", exact: true }).click();
    await page.getByRole("heading", { name: "Traffic map", level: 1 }).waitFor({ timeout: 10_000 });
    expect(await page.getByRole("alert").count()).toBe(0);
    await page.goBack();
    await page.getByRole("alert").waitFor({ timeout: 10_000 });

    // The answer as it should be: Try again reads and draws the page anew.
    await page.unroute(odd);
    await page.getByRole("button", { name: "Try again" }).click();
    await page.getByRole("heading", { name: /odd-meter/, level: 1 }).waitFor({ timeout: 10_000 });
    expect(await page.getByTestId("device-state").textContent()).toBe("active");
    await page.close();
  }, 60_000);
});
