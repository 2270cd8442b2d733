/**
 * Builds a function the way SST does (its Go bundler's options: esbuild, ESM for Node, esnext,
 * names kept, its banner; ours: minified, the AWS SDK left to the Lambda runtime, the plugins
 * of infra/esbuild-plugins.mjs), so its size, start-up and the SDK commands it can send are
 * measured on what would be deployed. `infra/deploy.test.ts` checks that the plugins give the
 * same bytes when SST runs them. Used by `npm run bench:bundle` and `infra/functions.test.ts`.
 */
import { build, type Plugin } from "esbuild";
import plugins from "../../infra/esbuild-plugins.mjs";
import { join } from "node:path";
import { bundling } from "../../packages/core/src/platform/limits.ts";
import { functions, type FunctionName } from "../../packages/core/src/platform/functions.ts";

const root = join(import.meta.dirname, "..", "..");

export interface Bundle {
  readonly name: FunctionName;
  readonly code: string;
  readonly bytes: number;
  /** Bytes by input (package or file), largest first. */
  readonly inputs: readonly { path: string; bytes: number }[];
}

/** What SST puts before every ESM bundle, so that CommonJS dependencies can `require` and read `__dirname`. */
const sstBanner = [
  "import { createRequire as topLevelCreateRequire } from 'module';",
  "const require = topLevelCreateRequire(import.meta.url);",
  'import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"',
  "const __filename = topLevelFileUrlToPath(import.meta.url)",
  'const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))',
  "",
].join("\n");

/** What differs from SST's defaults; `baseline` builds the way SST does without them (the SDK bundled, every zod locale). */
export interface BundleVariant {
  readonly baseline?: boolean;
  /** The plugins to bundle with instead of infra/esbuild-plugins.mjs's (a test runs them as SST does). */
  readonly plugins?: readonly Plugin[];
}

export async function bundleFunction(name: FunctionName, variant: BundleVariant = {}): Promise<Bundle> {
  const result = await build({
    entryPoints: [join(root, "functions", "src", functions[name].handler)],
    bundle: true,
    write: false,
    platform: "node",
    format: "esm",
    // SST's own choices (sst/sst pkg/runtime/node/build.go): the newest syntax, and names kept.
    target: "esnext",
    keepNames: true,
    minify: bundling.minify,
    metafile: true,
    external: variant.baseline ? [] : [...bundling.external],
    mainFields: ["module", "main"],
    // What SST adds to every ESM bundle so CommonJS dependencies can `require`.
    banner: { js: sstBanner },
    plugins: variant.baseline ? [] : [...(variant.plugins ?? plugins)],
    logLevel: "silent",
  });
  const output = result.outputFiles[0]!;
  const meta = Object.values(result.metafile.outputs)[0]!;
  const inputs = Object.entries(meta.inputs)
    .map(([path, { bytesInOutput }]) => ({ path, bytes: bytesInOutput }))
    .sort((a, b) => b.bytes - a.bytes);
  return { name, code: output.text, bytes: output.contents.byteLength, inputs };
}

/** Bytes by npm package (or `(simroot)` for the workspace's own code). */
export function bytesByPackage(bundle: Bundle): [string, number][] {
  const totals = new Map<string, number>();
  for (const { path, bytes } of bundle.inputs) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    const key = match ? match[1]! : "(simroot)";
    totals.set(key, (totals.get(key) ?? 0) + bytes);
  }
  return [...totals].sort((a, b) => b[1] - a[1]);
}
