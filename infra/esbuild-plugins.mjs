// esbuild plugins for every function bundle: SST loads this file (`nodejs.plugins` in
// infra/functions.ts) and so does `scripts/bundle/build.ts`, so the budgets are measured on
// what is deployed.
//
// SST does not hand these hooks to esbuild: its Go side sends every resolve and load, one JSON line each, to a Node
// script of its own (`.sst/platform/functions/nodejs-runtime/plugin.mjs`), which runs each hook whose filter matches
// the string "undefined" (it tests the message, not the path), whatever the hook's namespace; Go panics on a reply that
// carries `pluginData`, `errors` or `warnings` (it reads their numbers as integers, JSON gives it floats); and a hook
// that throws ends the script, after which the deploy waits for it forever. So every hook here takes every path
// (`filter: any`), decides on `args.path`, `args.importer` and `args.namespace` itself, answers none of those three
// fields, and throws for nothing it may be asked. `infra/deploy.test.ts` bundles every
// function through SST's script, as SST's Go side calls it, and checks the bundles are the ones measured here.
//
// zodEnglishOnly: `import { z } from "zod"` keeps the whole `z` namespace, and with it
// `z.locales`: 50 translations of zod's error messages (about 370 KB minified) in every
// function. simroot answers in English only (problem+json carries its own messages), so the
// bundle's `zod/v4/locales/index.js` re-exports English alone. `z.config(z.locales.fr())` would
// fail in a function; nothing in simroot calls it.
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import ts from "typescript";

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
 * zodNoJsonSchema: zod 4's classic schemas import its JSON Schema conversion for `schema.toJSONSchema()` and Standard
 * Schema's `jsonSchema`: `core/to-json-schema.js` (~9 KB minified) and one processor per kind of schema,
 * `core/json-schema-processors.js` (~9 KB), so every function carried both. No function converts a schema at run time:
 * `npm run contracts` writes the OpenAPI and AsyncAPI documents from the schemas and the API serves those files (api
 * `documents.ts`). In a bundle, the conversion's entry points and processors throw instead; parsing and validation do
 * not use them. `aggregateChecks`, which the processors' module also exports and schemas' `minLength`, `format` and the
 * like read, stays zod's own.
 * @type {import("esbuild").Plugin}
 */
export const zodNoJsonSchema = {
  name: "zod-no-json-schema",
  setup(build) {
    const left =
      'const left = () => { throw new Error("zod\'s JSON Schema conversion is not in this bundle (infra/esbuild-plugins.mjs)"); };';
    build.onResolve({ filter: any }, (args) => {
      // The processors' module as the stub below imports it: zod's own file.
      if (!inZod(args.importer) || args.namespace === "zod-json-schema-processors") return undefined;
      if (/(^|[\\/])to-json-schema\.js$/.test(args.path ?? "")) return { path: "to-json-schema.js", namespace: "zod-no-json-schema" };
      if (/(^|[\\/])json-schema-processors\.js$/.test(args.path ?? ""))
        return { path: join(dirname(args.importer), args.path), namespace: "zod-json-schema-processors" };
      return undefined;
    });
    build.onLoad({ filter: any }, async (args) => {
      if (args.namespace === "zod-no-json-schema") {
        return {
          contents: [
            left,
            "export const initializeContext = left, handleUnrepresentable = left, processSchema = left, extractDefs = left, finalize = left;",
            "export { processSchema as process };",
            "export const createToJSONSchemaMethod = () => left, createStandardJSONSchemaMethod = () => left;",
          ].join("\n"),
          loader: "js",
        };
      }
      if (args.namespace !== "zod-json-schema-processors") return undefined;
      // Every name zod's module exports, read from it: a processor zod adds later is left out too. Of them, only
      // `aggregateChecks` is used outside the conversion (zod 4.6): one that zod comes to use so would throw here, so
      // infra/functions.test.ts runs zod's checks' getters in a bundle.
      const names = [...(await readFile(args.path, "utf8")).matchAll(/^export (?:const|function) (\w+)/gm)].map((match) => match[1]);
      const kept = ["aggregateChecks"];
      return {
        contents: [
          `export { ${kept.join(", ")} } from ${JSON.stringify(args.path)};`,
          left,
          `export const ${names
            .filter((name) => !kept.includes(name))
            .map((name) => `${name} = left`)
            .join(", ")};`,
        ].join("\n"),
        loader: "js",
        resolveDir: dirname(args.path),
      };
    });
  },
};

/**
 * A top-level schema declaration of simroot's own source: `const x = z…`, or one built from another schema
 * (`const x = deviceSchema.pick(…)`), exported or not, typed or not.
 */
const schemaDeclaration =
  /^((?:export )?const [A-Za-z_$][\w$]*(?:: [^=\n]+)? = )(?=z\b|[A-Za-z_$][\w$]*Schema\s*\.(?:extend|pick|omit|partial|and|or|merge|meta)\()/gm;

/** `source` with each top-level schema declaration marked pure, when the module imports zod. */
export const markSchemasPure = (source) => (/from "zod"/.test(source) ? source.replace(schemaDeclaration, "$1/* @__PURE__ */ ") : source);

/** What a schema's `.meta({...})` says only to readers of the documents: `npm run contracts` writes them from the sources. */
const documentationKeys = new Set(["description", "example"]);

/**
 * `source` without the documentation its schemas carry: in each `.meta({...})` call, the `description` and `example`
 * properties, and the call itself when nothing else is left (an `id`, a `param` and the like stay). Only the OpenAPI and
 * AsyncAPI generators read them (`npm run contracts`, from the sources); the API serves the documents as files, and
 * zod's parsing and errors never read a schema's metadata. The source is otherwise left byte for byte as it is.
 */
export function withoutSchemaDocs(source, fileName = "source.ts") {
  if (!source.includes(".meta(")) return source;
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  /** [start, end, replacement], none overlapping another: a `.meta(...)` call's arguments are not visited. */
  const edits = [];
  const visit = (node) => {
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      node.expression.name.text === "meta" &&
      node.arguments.length === 1 &&
      ts.isObjectLiteralExpression(node.arguments[0])
    ) {
      const object = node.arguments[0];
      const kept = object.properties.filter(
        (property) => !(ts.isPropertyAssignment(property) && ts.isIdentifier(property.name) && documentationKeys.has(property.name.text)),
      );
      if (kept.length === 0) edits.push([node.expression.expression.end, node.end, ""]);
      else if (kept.length < object.properties.length)
        edits.push([object.getStart(file), object.end, `{ ${kept.map((property) => property.getText(file)).join(", ")} }`]);
      visit(node.expression.expression);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  let out = source;
  for (const [start, end, replacement] of edits.sort((a, b) => b[0] - a[0])) out = out.slice(0, start) + replacement + out.slice(end);
  return out;
}

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
      return { contents: markSchemasPure(withoutSchemaDocs(await readFile(args.path, "utf8"), args.path)), loader: "ts" };
    });
  },
};

/**
 * dynamoLocalLeftOut: what a DynamoDB client gets against DynamoDB Local (core `store/dynamo-local.ts`: its
 * credentials, timeouts and lock-wait retries) is `undefined` in a function's bundle. No function in AWS sets an
 * endpoint; the bytes were in every function (review 146 pushed apiEnforcement past its budget with them).
 * @type {import("esbuild").Plugin}
 */
export const dynamoLocalLeftOut = {
  name: "dynamo-local-left-out",
  setup(build) {
    build.onResolve({ filter: any }, (args) => {
      if (!/(^|[\\/])dynamo-local\.ts$/.test(args.path ?? "") || !/[\\/]store[\\/]dynamo\.ts$/.test(args.importer ?? "")) return undefined;
      return { path: "dynamo-local.ts", namespace: "dynamo-local-left-out" };
    });
    build.onLoad({ filter: any }, (args) => {
      if (args.namespace !== "dynamo-local-left-out") return undefined;
      return { contents: "export const dynamoLocal = undefined;", loader: "js" };
    });
  },
};

export default [zodEnglishOnly, zodNoJsonSchema, zodSchemasPure, dynamoLocalLeftOut];
