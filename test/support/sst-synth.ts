/**
 * Synthesizes the SST app (`sst.config.ts` and `infra/`) without AWS: the program runs as `sst deploy` runs it, with
 * SST's platform (`.sst/platform`, from `npm run typecheck:infra`), but against Pulumi's resource mocks, and SST's
 * CLI calls (function builds, the bootstrap bucket) answered by a loopback server. Returns every resource the program
 * registered, with the inputs a deploy would send to AWS.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";

const root = join(import.meta.dirname, "..", "..");
const platform = join(root, ".sst", "platform");

export interface SynthesizedResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  /** The outputs the mocks gave it (its physical name, ARN, id, a queue's URL): what other resources refer to. */
  readonly outputs: { readonly name: string; readonly arn: string; readonly id: string; readonly url?: string };
}

export interface Synthesized {
  readonly resources: SynthesizedResource[];
  readonly outputs: Record<string, unknown>;
}

/** SST's CLI side: builds (an empty handler: the bundles themselves are tested in infra/functions.test.ts) and the bootstrap bucket. */
async function cliServer(work: string) {
  const builds: unknown[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", async () => {
      const { method, params } = JSON.parse(body) as { method: string; params: unknown[] };
      let result: unknown = {};
      if (method === "Runtime.Build") {
        builds.push(params[0]);
        const out = join(work, `build-${builds.length}`);
        await mkdir(out, { recursive: true });
        await writeFile(join(out, "index.mjs"), "export const handler = async () => {};\n");
        result = { handler: "index.handler", out, errors: [], sourcemaps: [] };
      } else if (method === "Provider.Aws.Bootstrap") {
        result = {
          asset: "sst-asset-synth",
          state: "sst-state-synth",
          assetEcrRegistryId: "",
          assetEcrUrl: "",
          appsyncHttp: "",
          appsyncRealtime: "",
        };
      }
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ id: 0, result, error: null }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, builds, close: () => server.close() };
}

export async function synthesize(stage: string, env: Record<string, string> = {}): Promise<Synthesized> {
  const work = await mkdtemp(join(tmpdir(), "simroot-synth-"));
  // Inside .sst/platform, so that `@pulumi/*` resolve from its node_modules as under `sst deploy`.
  const program = join(platform, `synth-${stage}-${randomUUID()}.mjs`);
  const entry = join(work, "entry.mjs");
  await writeFile(
    entry,
    [
      `export { run } from ${JSON.stringify(join(platform, "src", "auto", "run.ts"))};`,
      `export { default } from ${JSON.stringify(join(root, "sst.config.ts"))};`,
      // SST's globals \`sst\` and \`aws\`, set by the child before the program runs.
      `export * as sst from ${JSON.stringify(join(platform, "src", "components", "index.ts"))};`,
    ].join("\n"),
  );
  await build({
    entryPoints: [entry],
    outfile: program,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node24",
    external: ["@pulumi/*", "@aws-sdk/*", "@smithy/*", "esbuild"],
    inject: [join(platform, "src", "shim", "run.js")],
    banner: {
      js: `import { createRequire as topLevelCreateRequire } from 'module';const require = topLevelCreateRequire(import.meta.url);`,
    },
    nodePaths: [join(platform, "node_modules")],
    logLevel: "silent",
  });
  // The child too: its `@pulumi/pulumi` must be the instance the program's components register with.
  const child = `${program.slice(0, -4)}-child.mjs`;
  await writeFile(child, await readFile(join(import.meta.dirname, "sst-synth-child.mjs"), "utf8"));
  const cli = await cliServer(work);
  const out = join(work, "synth.json");
  try {
    const running = spawn(process.execPath, [child], {
      cwd: platform,
      env: {
        // The deploying shell's simroot settings (stage sizes, integrations) would change what is synthesized: only `env`'s.
        ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("SIMROOT_"))),
        ...env,
        NODE_PATH: join(platform, "node_modules"),
        SST_SERVER: cli.url,
        SYNTH_PROGRAM: program,
        SYNTH_STAGE: stage,
        SYNTH_ROOT: root,
        SYNTH_WORK: work,
        SYNTH_OUT: out,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    running.stdout.on("data", (chunk) => (output += chunk));
    running.stderr.on("data", (chunk) => (output += chunk));
    // Bounded: a program that hangs (an output never resolved) is killed, and its output reported.
    const timer = setTimeout(() => running.kill("SIGKILL"), 120_000);
    const code = await new Promise<number | null>((resolve) => running.on("close", resolve)).finally(() => clearTimeout(timer));
    if (code !== 0) throw new Error(`synthesis failed (${code}):\n${output.slice(-4000)}`);
    return JSON.parse(await readFile(out, "utf8")) as Synthesized;
  } finally {
    cli.close();
    await rm(program, { force: true });
    await rm(child, { force: true });
    await rm(work, { recursive: true, force: true });
  }
}
