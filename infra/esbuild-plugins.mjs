// esbuild plugins for every function bundle: SST loads this file (`nodejs.plugins` in
// infra/functions.ts) and so does `scripts/bundle/build.ts`, so the budgets are measured on
// what is deployed.
//
// zodEnglishOnly: `import { z } from "zod"` keeps the whole `z` namespace, and with it
// `z.locales`: 50 translations of zod's error messages (about 370 KB minified) in every
// function. simroot answers in English only (problem+json carries its own messages), so the
// bundle's `zod/v4/locales/index.js` re-exports English alone. `z.config(z.locales.fr())` would
// fail in a function; nothing in simroot calls it.
import { dirname, join } from "node:path";

/** @type {import("esbuild").Plugin} */
export const zodEnglishOnly = {
  name: "zod-english-only",
  setup(build) {
    build.onResolve({ filter: /[\\/]locales[\\/]index\.js$|^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]zod[\\/]/.test(args.importer)) return undefined;
      const localesDir = join(dirname(args.importer), "..", "locales");
      return { path: join(localesDir, "index.js"), namespace: "zod-english-only", pluginData: { localesDir } };
    });
    build.onLoad({ filter: /.*/, namespace: "zod-english-only" }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(join(args.pluginData.localesDir, "en.js"))};`,
      loader: "js",
      resolveDir: args.pluginData.localesDir,
    }));
  },
};

/**
 * zodNoJsonSchema: zod 4's classic schemas import its JSON Schema conversion (`core/to-json-schema.js`, ~9 KB
 * minified) for `schema.toJSONSchema()` and Standard Schema's `jsonSchema`, so every function carried it. No function
 * converts a schema at run time: `npm run contracts` writes the OpenAPI and AsyncAPI documents from the schemas and the
 * API serves those files (api `documents.ts`). In a bundle, the conversion's entry points throw instead; parsing and
 * validation do not use them.
 * @type {import("esbuild").Plugin}
 */
export const zodNoJsonSchema = {
  name: "zod-no-json-schema",
  setup(build) {
    build.onResolve({ filter: /(^|[\\/])to-json-schema\.js$/ }, (args) => {
      if (!/[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)) return undefined;
      return { path: "to-json-schema.js", namespace: "zod-no-json-schema" };
    });
    build.onLoad({ filter: /.*/, namespace: "zod-no-json-schema" }, () => ({
      contents: [
        'const left = () => { throw new Error("zod\'s JSON Schema conversion is not in this bundle (infra/esbuild-plugins.mjs)"); };',
        "export const initializeContext = left, handleUnrepresentable = left, processSchema = left, extractDefs = left, finalize = left;",
        "export { processSchema as process };",
        "export const createToJSONSchemaMethod = () => left, createStandardJSONSchemaMethod = () => left;",
      ].join("\n"),
      loader: "js",
    }));
  },
};

export default [zodEnglishOnly, zodNoJsonSchema];
