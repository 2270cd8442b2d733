/**
 * Review 139: what a link someone sends, or a device's own events, can do to an operator using the console, in a real
 * browser against the control plane on a real port (the harness of console.test.ts).
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, it } from "vitest";
import { buildConsole } from "@simroot/console/build";
import { startTestRuntime, tenantClient, type TestRuntime } from "../support/runtime.ts";
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
});
