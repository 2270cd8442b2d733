/**
 * Generates `packages/sdk/src/openapi.d.ts` from the API's OpenAPI 3.1 document, built in
 * process from `createApp` (no server, no store): `npm run sdk:generate`.
 *
 * `--check` writes nothing and exits 1 when the committed file differs from what the current
 * app generates; `test/sdk-cli.test.ts` runs the same comparison so drift fails the tests.
 */
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString, type OpenAPI3 } from "openapi-typescript";
import { createApp } from "@simroot/api";
import type { Ports } from "@simroot/core";

export const generatedPath = fileURLToPath(new URL("../src/openapi.d.ts", import.meta.url));

const header = `/**
 * The simroot API's paths and schemas, generated from its OpenAPI document by openapi-typescript.
 * Do not edit: run \`npm run sdk:generate\` after changing a route.
 */

`;

/**
 * The document exactly as the app serves it at `/openapi.json` (same `doc31` configuration).
 * Serving it touches no port, so any port access is a bug and fails loudly.
 */
export async function openApiDocument(): Promise<OpenAPI3> {
  const noPorts = new Proxy({} as Ports, {
    get: (_, property) => {
      throw new Error(`generating the OpenAPI document must not use ports (read ${String(property)})`);
    },
  });
  const app = createApp({
    ports: () => noPorts,
    health: {},
    feedSigner: () => Promise.reject(new Error("generating the OpenAPI document must not sign")),
  });
  const response = await app.request("/openapi.json");
  if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as OpenAPI3;
}

/** The text `openapi.d.ts` must have for the current app. */
export async function generateOpenApiTypes(): Promise<string> {
  // The document describes inputs (zod's input schemas): a field with a default is not in
  // `required` and callers may omit it, so defaults must not make fields required here.
  const ast = await openapiTS(await openApiDocument(), { silent: true, defaultNonNullable: false });
  return header + astToString(ast);
}

async function main(args: string[]) {
  const expected = await generateOpenApiTypes();
  if (args.includes("--check")) {
    const current = await readFile(generatedPath, "utf8").catch(() => "");
    if (current === expected) return 0;
    console.error(`${generatedPath} is out of date: run npm run sdk:generate`);
    return 1;
  }
  await writeFile(generatedPath, expected);
  console.log(`wrote ${generatedPath}`);
  return 0;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
