/**
 * The harness of the console's browser tests: the console built, the control plane on a real port, Chromium; and an
 * operator signing in with a key, as the sign-in page asks.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { buildConsole } from "@simroot/console/build";
import { startTestRuntime, type TestRuntime } from "../support/runtime.ts";
import { chromiumPath, launch } from "./browser.ts";

/** Whether the browser tests run: a Chromium here, or CI (where a missing one must fail, not skip). */
export const browserAvailable = chromiumPath !== undefined || process.env.CI === "true";

/** Starts the harness before the calling `describe`'s tests and stops it after them. */
export function consoleHarness() {
  const held: { runtime?: TestRuntime; browser?: Browser } = {};
  beforeAll(async () => {
    await buildConsole();
    held.runtime = await startTestRuntime({ port: 0 });
    held.browser = await launch();
  }, 120_000);
  afterAll(async () => {
    await held.browser?.close();
    await held.runtime?.stop();
  });
  return {
    get runtime(): TestRuntime {
      return held.runtime!;
    },
    get browser(): Browser {
      return held.browser!;
    },
    /** Signs in with `token` on the sign-in page and waits for the fleet. */
    async signIn(page: Page, token: string) {
      await page.goto(`${held.runtime!.url}/console/`);
      await page.getByLabel("API key").fill(token);
      await page.getByRole("button", { name: "Open the console" }).click();
      await page.getByRole("heading", { name: "Fleet", level: 1 }).waitFor();
    },
  };
}
