/**
 * SST's way of running `nodejs.plugins` (infra/functions.ts), for tests: SST bundles with esbuild's Go API and registers
 * one plugin of its own (sst/sst `pkg/runtime/node/plugin.go`), an `OnResolve` and an `OnLoad` on every path, each of
 * which sends the hook's arguments, one JSON line, to a Node process running SST's bridge script
 * (`.sst/platform/functions/nodejs-runtime/plugin.mjs`, which loads the plugins file) and builds esbuild's result from
 * the reply, field by field, with Go's type assertions (a reply carrying `pluginData`, `errors` or `warnings` panics there).
 *
 * This is that Go side written as an esbuild plugin, so a build through it is what `sst deploy` would bundle, and can be
 * compared with the build the budgets and permission checks measure (scripts/bundle/build.ts).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Loader, Plugin } from "esbuild";

/** The loaders SST maps a reply's `loader` through (plugin.go `loaderMap`). */
const loaders = new Set([
  "base64",
  "binary",
  "copy",
  "css",
  "dataurl",
  "default",
  "empty",
  "file",
  "js",
  "json",
  "jsx",
  "text",
  "ts",
  "tsx",
]);

type Reply = Record<string, unknown>;

/**
 * What Go cannot take from a reply: it decodes JSON numbers as float64, so its `value.(int)` panics on any `pluginData`,
 * and on the `detail` of every message in `errors` or `warnings` (plugin.go `decodeMessages`). A panic ends SST's build.
 */
function refuseWhatGoPanicsOn(reply: Reply): void {
  for (const field of ["pluginData", "errors", "warnings"]) {
    if (field in reply) throw new Error(`SST would panic on the reply's ${field} (${JSON.stringify(reply[field])})`);
  }
}

/** The fields Go reads from a reply of either hook, besides the hook's own. */
function shared(reply: Reply) {
  if (typeof reply.error === "string") throw new Error(reply.error);
  refuseWhatGoPanicsOn(reply);
  return typeof reply.pluginName === "string" ? { pluginName: reply.pluginName } : {};
}

export interface SstPluginBridge {
  readonly plugin: Plugin;
  /** Ends the bridge process; rejects if it exited on its own (a plugin crashed it, and SST would wait for it forever). */
  readonly close: () => Promise<void>;
}

/** The bridge running `pluginsFile` (relative to `root`, as `nodejs.plugins` names it). */
export function sstPluginBridge(root: string, pluginsFile: string): SstPluginBridge {
  const child = spawn(process.execPath, [join(root, ".sst/platform/functions/nodejs-runtime/plugin.mjs"), join(root, pluginsFile)], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  let exited: string | undefined;
  const pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  child.once("exit", (code, signal) => {
    exited = `SST's plugin bridge exited (${code ?? signal}): ${stderr.trim().split("\n").slice(0, 3).join(" / ")}`;
    // SST would wait for these replies forever; here they fail.
    for (const { reject } of pending.values()) reject(new Error(exited));
    pending.clear();
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    const { id, value } = JSON.parse(line) as { id: number; value: Reply };
    pending.get(id)?.resolve(value);
    pending.delete(id);
  });
  let count = 0;
  const request = (command: "resolve" | "load", value: Reply) =>
    new Promise<Reply>((resolve, reject) => {
      if (exited) return reject(new Error(exited));
      const id = count++;
      pending.set(id, { resolve, reject });
      child.stdin.write(`${JSON.stringify({ id, command, value })}\n`);
    });

  const plugin: Plugin = {
    name: "nodejs-plugin",
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        // esbuild's arguments are the fields Go sends (path, importer, namespace, resolveDir, kind, pluginData, with).
        const reply = await request("resolve", { ...args, pluginData: args.pluginData ?? null });
        const common = shared(reply);
        // Go's result with no path (and nothing else) leaves the path to the next resolver, esbuild's own.
        if (typeof reply.path !== "string" && reply.external === undefined) return undefined;
        return {
          ...common,
          ...(typeof reply.path === "string" ? { path: reply.path } : {}),
          ...(typeof reply.namespace === "string" ? { namespace: reply.namespace } : {}),
          ...(typeof reply.suffix === "string" ? { suffix: reply.suffix } : {}),
          ...(typeof reply.external === "boolean" ? { external: reply.external } : {}),
          ...(typeof reply.sideEffects === "boolean" ? { sideEffects: reply.sideEffects } : {}),
        };
      });
      build.onLoad({ filter: /.*/ }, async (args) => {
        // Likewise: path, namespace, suffix, pluginData, with.
        const reply = await request("load", { ...args, pluginData: args.pluginData ?? null });
        const common = shared(reply);
        if (reply.loader !== undefined && !loaders.has(String(reply.loader))) throw new Error(`SST maps no loader "${reply.loader}"`);
        // No contents: esbuild loads the file itself.
        if (typeof reply.contents !== "string") return undefined;
        return {
          ...common,
          ...(typeof reply.loader === "string" ? { loader: reply.loader as Loader } : {}),
          contents: reply.contents,
          ...(typeof reply.resolveDir === "string" ? { resolveDir: reply.resolveDir } : {}),
        };
      });
    },
  };

  const close = async () => {
    if (exited) throw new Error(exited);
    child.kill();
  };
  return { plugin, close };
}
