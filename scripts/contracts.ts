/**
 * `npm run contracts`: writes `packages/api/openapi.json` (from the API's routes) and
 * `packages/api/asyncapi.json` (from core's event catalogue). Run it after changing a route or an
 * event; the contract tests fail while a file is stale.
 */
import { writeFileSync } from "node:fs";
import { createApp } from "../packages/api/src/app.ts";
import { asyncApiText, documentOnlyOptions, openApiText } from "../packages/api/src/contracts.ts";
import { documentFile } from "../packages/api/src/documents.ts";

writeFileSync(documentFile("openapi.json"), openApiText(createApp(documentOnlyOptions)));
writeFileSync(documentFile("asyncapi.json"), asyncApiText());
console.log(`wrote ${documentFile("openapi.json")} and ${documentFile("asyncapi.json")}`);
