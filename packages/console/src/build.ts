/**
 * Builds the console: esbuild bundles `ui/main.tsx` (Preact) and its CSS into content-hashed,
 * minified files under `dist/assets/`, and writes `dist/index.html` naming them. Every version
 * comes from package-lock.json, nothing is fetched at run time: the console works offline.
 * Runs on `npm install` (the root `prepare` script) and as `npm run console:build`.
 */
import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * Builds into a directory of its own, then moves each file into `outDir` (a rename: atomic), and only then removes what
 * the build no longer makes: whoever reads `outDir` meanwhile (another test file's server, `sst deploy`'s copy of the
 * function's files) never finds it missing or half written.
 */
export async function buildConsole(outDir = join(root, "dist")) {
  const staging = `${outDir}.build-${process.pid}-${Date.now()}`;
  await buildInto(staging);
  await mkdir(join(outDir, "assets"), { recursive: true });
  const built = await readdir(join(staging, "assets"));
  for (const file of built) await rename(join(staging, "assets", file), join(outDir, "assets", file));
  await rename(join(staging, "index.html"), join(outDir, "index.html"));
  for (const file of await readdir(join(outDir, "assets")))
    if (!built.includes(file)) await rm(join(outDir, "assets", file), { force: true });
  await rm(staging, { recursive: true, force: true });
  return { outDir, files: built };
}

/**
 * The minutes a console tab stays signed in without a key pressed or the pointer used: `SIMROOT_CONSOLE_IDLE_MINUTES`
 * when built (a whole number, 1 to 1440), or 15. Anything else fails the build rather than ship a console that never
 * signs out.
 */
export function idleMinutes(setting = process.env.SIMROOT_CONSOLE_IDLE_MINUTES): number {
  if (setting === undefined || setting === "") return 15;
  const minutes = Number(setting);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) {
    throw new Error(`SIMROOT_CONSOLE_IDLE_MINUTES must be a whole number of minutes from 1 to 1440, not ${JSON.stringify(setting)}`);
  }
  return minutes;
}

async function buildInto(outDir: string) {
  const minutes = idleMinutes();
  await mkdir(join(outDir, "assets"), { recursive: true });
  const result = await build({
    entryPoints: [join(root, "ui/main.tsx"), join(root, "ui/styles.css")],
    bundle: true,
    minify: true,
    format: "esm",
    target: ["es2022"],
    jsx: "automatic",
    jsxImportSource: "preact",
    define: { SIMROOT_IDLE_MINUTES: String(minutes) },
    outdir: join(outDir, "assets"),
    entryNames: "[name]-[hash]",
    metafile: true,
    legalComments: "linked",
    logLevel: "warning",
  });
  const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path));
  const script = outputs.find((name) => name.startsWith("main-") && name.endsWith(".js"));
  const style = outputs.find((name) => name.startsWith("styles-") && name.endsWith(".css"));
  if (!script || !style) throw new Error(`console build: unexpected outputs ${outputs.join(", ")}`);
  const html = [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>simroot console</title>",
    `<link rel="stylesheet" href="/console/assets/${style}">`,
    `<script type="module" src="/console/assets/${script}"></script>`,
    "</head>",
    '<body><div id="app"></div><noscript>The simroot console needs JavaScript.</noscript></body>',
    "</html>",
    "",
  ].join("\n");
  await writeFile(join(outDir, "index.html"), html);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { outDir, files } = await buildConsole();
  console.log(`console built in ${outDir}: ${files.join(", ")}`);
}
