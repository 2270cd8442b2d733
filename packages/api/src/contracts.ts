/**
 * The contract documents as `npm run contracts` writes them: the OpenAPI document generated from
 * an app's route definitions by zod-to-openapi and completed by `completeDocument`, and the
 * AsyncAPI document of core's event catalogue. Run by the script and the contract tests, never by
 * a function: the app serves the checked-in files (`documents.ts`).
 */
import { OpenApiGeneratorV31 } from "@asteasolutions/zod-to-openapi";
import { asyncApiDocument } from "@simroot/core";
import type { AppOptions } from "./env.ts";
import { completeDocument } from "./openapi-document.ts";
import { routeDefinitions } from "./route-table.ts";

const config = {
  openapi: "3.1.0",
  info: {
    title: "simroot API",
    version: "0.1.0",
    description: "SIM-rooted Zero Trust control plane for IoT fleets",
    license: { name: "Apache-2.0", identifier: "Apache-2.0" },
  },
  security: [{ apiKey: [] }],
};

export function generateOpenApiDocument(app: unknown): Record<string, unknown> {
  const definitions = routeDefinitions(app) as ConstructorParameters<typeof OpenApiGeneratorV31>[0];
  return completeDocument(new OpenApiGeneratorV31(definitions).generateDocument(config));
}

const text = (document: unknown) => `${JSON.stringify(document, null, 2)}\n`;

/** `packages/api/openapi.json` as the routes of `app` say it. */
export const openApiText = (app: unknown) => text(generateOpenApiDocument(app));

/** `packages/api/asyncapi.json` as core's event catalogue says it. */
export const asyncApiText = () => text(asyncApiDocument());

const documentOnly = () => {
  throw new Error("this app was built to read its routes; it serves no request");
};

/** Options for an app built only to read its routes (`createApp(documentOnlyOptions)`). */
export const documentOnlyOptions: AppOptions = { ports: documentOnly, health: {}, feedSigner: async () => documentOnly() };
