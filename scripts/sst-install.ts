/**
 * Makes sure `.sst/platform/` (SST's component types, `config.d.ts`) exists so
 * `tsc -p tsconfig.infra.json` can typecheck the infra without an AWS account:
 * runs `sst install --stage ci` unless the installed platform is already up to date.
 *
 * `sst install` needs no AWS credentials, but it does fetch the platform's and the
 * providers' npm packages (through npm, as SST_NO_BUN is set), so it needs the npm
 * registry the first time and after every SST upgrade.
 *
 * Run with Node's type stripping: `node scripts/sst-install.ts`.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const platformTypes = join(root, ".sst", "platform", "config.d.ts");
const platformVersion = join(root, ".sst", "platform", "version");
const inputs = [join(root, "sst.config.ts"), join(root, "package-lock.json")];

function fail(message: string): never {
  console.error(`sst-install: ${message}`);
  process.exit(1);
}

function mtime(path: string): number | undefined {
  return existsSync(path) ? statSync(path).mtimeMs : undefined;
}

function installedSstVersion(): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(join(root, "node_modules", "sst", "package.json"), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

/** Why the platform must be (re)installed, or undefined when it is up to date. */
function staleReason(): string | undefined {
  const typesTime = mtime(platformTypes);
  if (typesTime === undefined) return ".sst/platform/config.d.ts is missing";
  for (const input of inputs) {
    const inputTime = mtime(input);
    if (inputTime !== undefined && inputTime > typesTime) {
      return `${input.slice(root.length + 1)} is newer than .sst/platform/config.d.ts`;
    }
  }
  const wanted = installedSstVersion();
  const installed = existsSync(platformVersion) ? readFileSync(platformVersion, "utf8").trim() : undefined;
  if (wanted !== undefined && installed !== wanted) {
    return `.sst/platform is SST ${installed ?? "(unknown)"}, node_modules has SST ${wanted}`;
  }
  return undefined;
}

if (!existsSync(join(root, "sst.config.ts"))) fail("no sst.config.ts at the repository root");
if (installedSstVersion() === undefined) fail("the sst package is not installed: run `npm ci` first");

const reason = staleReason();
if (reason === undefined) {
  console.log("sst-install: .sst/platform is up to date, skipping `sst install`");
  process.exit(0);
}

console.log(`sst-install: ${reason}; running \`sst install --stage ci\``);
const result = spawnSync("npx", ["--no", "sst", "install", "--stage", "ci"], {
  cwd: root,
  stdio: "inherit",
  shell: process.platform === "win32",
  timeout: 10 * 60 * 1000,
  env: {
    ...process.env,
    SST_SKIP_DEPENDENCY_CHECK: "1",
    SST_NO_BUN: "1",
    SST_TELEMETRY_DISABLED: "1",
  },
});

if (result.error !== undefined) fail(`could not run \`npx sst install\`: ${result.error.message}`);
if (result.signal !== null) fail(`\`sst install\` was killed by ${result.signal} (timeout is 10 minutes)`);
if (result.status !== 0) {
  fail(
    `\`sst install --stage ci\` exited with ${result.status}. It fetches SST's platform and provider ` +
      "packages from the npm registry: check that the registry is reachable (npm config get registry).",
  );
}
if (!existsSync(platformTypes)) {
  fail("`sst install` succeeded but did not write .sst/platform/config.d.ts");
}

// Stamp the result, so the next run skips even if sst left config.d.ts untouched.
const now = new Date();
utimesSync(platformTypes, now, now);
console.log("sst-install: .sst/platform installed");
