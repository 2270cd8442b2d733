// esbuild plugins for every function bundle: SST loads this file (`nodejs.plugins` in
// infra/functions.ts) and so does `scripts/bundle/build.ts`, so the budgets are measured on
// what is deployed.
//
// SST does not hand these hooks to esbuild: its Go side sends every resolve and load, one JSON line each, to a Node
// script of its own (`.sst/platform/functions/nodejs-runtime/plugin.mjs`), which runs each hook whose filter matches
// the string "undefined" (it tests the message, not the path), whatever the hook's namespace, and passes `pluginData`
// back through Go as an integer only; a hook that throws there ends the script, and the deploy waits for it forever.
// So every hook here takes every path (`filter: any`), decides on `args.path`, `args.importer` and `args.namespace`
// itself, carries no `pluginData`, and throws for nothing it may be asked. `infra/deploy.test.ts` bundles every
// function through SST's script, as SST's Go side calls it, and checks the bundles are the ones measured here.
//
// zodEnglishOnly: `import { z } from "zod"` keeps the whole `z` namespace, and with it
// `z.locales`: 50 translations of zod's error messages (about 370 KB minified) in every
// function. simroot answers in English only (problem+json carries its own messages), so the
// bundle's `zod/v4/locales/index.js` re-exports English alone. `z.config(z.locales.fr())` would
// fail in a function; nothing in simroot calls it.
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";

const any = /.*/;
const inZod = (importer) => /[\\/]node_modules[\\/]zod[\\/]/.test(importer ?? "");

/** @type {import("esbuild").Plugin} */
export const zodEnglishOnly = {
  name: "zod-english-only",
  setup(build) {
    build.onResolve({ filter: any }, (args) => {
      if (!/(^|[\\/])locales[\\/]index\.js$/.test(args.path ?? "") || !inZod(args.importer)) return undefined;
      return { path: join(dirname(args.importer), "..", "locales", "index.js"), namespace: "zod-english-only" };
    });
    build.onLoad({ filter: any }, (args) => {
      if (args.namespace !== "zod-english-only") return undefined;
      const localesDir = dirname(args.path);
      return {
        contents: `export { default as en } from ${JSON.stringify(join(localesDir, "en.js"))};`,
        loader: "js",
        resolveDir: localesDir,
      };
    });
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
    build.onResolve({ filter: any }, (args) => {
      if (!/(^|[\\/])to-json-schema\.js$/.test(args.path ?? "") || !inZod(args.importer)) return undefined;
      return { path: "to-json-schema.js", namespace: "zod-no-json-schema" };
    });
    build.onLoad({ filter: any }, (args) => {
      if (args.namespace !== "zod-no-json-schema") return undefined;
      return {
        contents: [
          'const left = () => { throw new Error("zod\'s JSON Schema conversion is not in this bundle (infra/esbuild-plugins.mjs)"); };',
          "export const initializeContext = left, handleUnrepresentable = left, processSchema = left, extractDefs = left, finalize = left;",
          "export { processSchema as process };",
          "export const createToJSONSchemaMethod = () => left, createStandardJSONSchemaMethod = () => left;",
        ].join("\n"),
        loader: "js",
      };
    });
  },
};

/**
 * A top-level schema declaration of simroot's own source: `const x = z…`, or one built from another schema
 * (`const x = deviceSchema.pick(…)`), exported or not, typed or not.
 */
const schemaDeclaration =
  /^((?:export )?const [A-Za-z_$][\w$]*(?:: [^=\n]+)? = )(?=z\b|[A-Za-z_$][\w$]*Schema\.(?:extend|pick|omit|partial|and|or|merge|meta)\()/gm;

/** `source` with each top-level schema declaration marked pure, when the module imports zod. */
export const markSchemasPure = (source) => (/from "zod"/.test(source) ? source.replace(schemaDeclaration, "$1/* @__PURE__ */ ") : source);

/**
 * zodSchemasPure: building a zod schema has no effect but the schema (and, for `.meta({ id })`, an entry in zod's
 * global registry, which only the JSON Schema conversion reads, and no function has it: above). esbuild cannot know
 * that, so every schema a module declares was built at every cold start of every function that imports the module
 * for anything, used or not: a consumer built the policy model's, the devices', the decisions'. Marked pure, a
 * schema no code of the function reaches is left out of its bundle: about 30 µs of module init each, 10 to 17 ms
 * for a consumer (`npm run bench:bundle`).
 * @type {import("esbuild").Plugin}
 */
export const zodSchemasPure = {
  name: "zod-schemas-pure",
  setup(build) {
    build.onLoad({ filter: any }, async (args) => {
      if (args.namespace !== "file" || !/\.ts$/.test(args.path ?? "") || /[\\/]node_modules[\\/]/.test(args.path)) return undefined;
      return { contents: markSchemasPure(await readFile(args.path, "utf8")), loader: "ts" };
    });
  },
};

export default [zodEnglishOnly, zodNoJsonSchema, zodSchemasPure];
