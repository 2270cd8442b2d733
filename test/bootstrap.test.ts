/**
 * `npm run bootstrap`: a deployed stage's first tenant, the platform tenant, and its admin key, against the stage's
 * tables (here DynamoDB Local's, named as the deploy outputs name them). README "Deploying" step 3.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { call, startTestRuntime, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const bootstrap = (name: string) =>
  promisify(execFile)(process.execPath, [join(import.meta.dirname, "..", "scripts", "bootstrap.ts"), name], {
    env: {
      PATH: process.env.PATH,
      DYNAMODB_ENDPOINT: inject("dynamoEndpoint"),
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      SIMROOT_DYNAMODB_LOCAL_KEY: process.env.SIMROOT_DYNAMODB_LOCAL_KEY,
      ...Object.fromEntries(Object.entries(runtime.ports.tables).map(([key, table]) => [`SIMROOT_TABLE_${key.toUpperCase()}`, table])),
    },
    timeout: 30_000,
  }).then(
    ({ stdout }) => ({ code: 0, stdout, stderr: "" }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );

describe("npm run bootstrap", () => {
  it("creates the platform tenant and its admin key once, whose admin creates the other tenants (review 64)", async () => {
    // README's first-deploy step said an operator key or `createTenantWithAdminKey` would do: the first has nothing to
    // authenticate with on a new stage, and the second made a tenant that may not create tenants.
    const first = await bootstrap("ops");
    expect(first.code, first.stderr).toBe(0);
    const token = /export SIMROOT_API_KEY=(\S+)/.exec(first.stdout)?.[1];
    expect(token).toBeTruthy();
    const created = await call(runtime, token!, "POST", "/v1/tenants", { name: "acme" });
    expect(created.status, created.text).toBe(201);
    // Once per stage: a second run creates nothing.
    const again = await bootstrap("ops-again");
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/platform tenant already/);
    expect(again.stdout).not.toMatch(/SIMROOT_API_KEY/);
  });
});
