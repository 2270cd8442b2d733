/**
 * Review 139's leftovers: what an operator's console does when a page cannot be drawn, and when its tab is left alone, in
 * a real browser against the control plane on a real port (the harness of console.test.ts).
 */
import { describe, expect, it } from "vitest";
import { idleMinutes } from "@simroot/console/build";
import { tenantClient } from "../support/runtime.ts";
import { screenshot, seriousViolations } from "./browser.ts";
import { browserAvailable, consoleHarness } from "./harness.ts";

describe.runIf(browserAvailable)("the web console's page failures and idle tabs (review 139)", () => {
  const harness = consoleHarness();

  it("says which page failed to draw, keeps the navigation and Sign out, logs the error, and draws it again on Try again", async () => {
    // A page that threw while drawing took the whole console with it: a blank tab, no navigation, no Sign out, nothing
    // saying what happened. Here the device's answer has a shape the page does not know (no identity, no ICCIDs: an
    // answer of another release, a proxy's rewrite), as the browser receives it.
    const tenant = await tenantClient(harness.runtime, "odd-answer");
    const device = (await tenant.call("POST", "/v1/devices", { name: "odd-meter", imsi: "208011390000101" })).json;
    const page = await harness.browser.newPage({ viewport: { width: 1366, height: 900 } });
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
    await harness.signIn(page, tenant.token);
    await page.goto(`${harness.runtime.url}/console/#/devices/${encodeURIComponent(device.id)}`);
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

  it("signs out a tab left without a key pressed or the pointer moved for 15 minutes, and says why", async () => {
    // The key stayed in the tab for as long as the tab stayed open: a console left open on a shared desk or an unlocked
    // laptop acted with the operator's key for anyone, hours later.
    const tenant = await tenantClient(harness.runtime, "idle");
    const page = await harness.browser.newPage({ viewport: { width: 1366, height: 900 } });
    await page.clock.install();
    await harness.signIn(page, tenant.token);
    const signedIn = () => page.evaluate(() => sessionStorage.getItem("simroot.apiKey"));

    // In use: the pointer moved after 14 minutes, a key pressed 14 minutes later; 14 more minutes later it is still in.
    await page.clock.fastForward("14:00");
    await page.mouse.move(300, 300);
    await page.mouse.move(320, 310);
    await page.clock.fastForward("14:00");
    await page.keyboard.press("Shift");
    await page.clock.fastForward("14:00");
    expect(await signedIn()).toBe(tenant.token);
    expect(await page.getByRole("button", { name: "Sign out" }).isVisible()).toBe(true);

    // Then left alone for 15 minutes from the last key: signed out, key forgotten, and told why.
    await page.clock.fastForward("01:01");
    await page.getByLabel("API key").waitFor({ timeout: 10_000 });
    expect(await page.getByRole("alert").textContent()).toContain("Signed out after 15 minutes without activity");
    expect(await signedIn()).toBeNull();
    expect(await page.getByRole("button", { name: "Sign out" }).count()).toBe(0);
    expect(await seriousViolations(page)).toEqual([]);
    // Gone for good: a reload asks for a key again.
    await page.reload();
    await page.getByLabel("API key").waitFor({ timeout: 10_000 });
    expect(await page.getByRole("heading", { name: "Fleet", level: 1 }).count()).toBe(0);
    await page.close();
  }, 60_000);
});

describe("the console's idle period, set when it is built", () => {
  it("is 15 minutes unless SIMROOT_CONSOLE_IDLE_MINUTES says otherwise, and a build given anything but 1 to 1440 minutes fails", () => {
    expect(idleMinutes(undefined)).toBe(15);
    expect(idleMinutes("")).toBe(15);
    expect(idleMinutes("5")).toBe(5);
    expect(idleMinutes("1440")).toBe(1440);
    // A console that never signs out, or at once, is not shipped by mistake.
    for (const setting of ["0", "-5", "2.5", "1441", "never", "Infinity"]) expect(() => idleMinutes(setting)).toThrow(/1 to 1440/);
  });
});
