#!/usr/bin/env node
// The `simroot-pep` daemon: runs the TypeScript sources with Node's type stripping (Node >= 22.18;
// the repo pins Node 24, which `npx simroot-pep` and npm scripts put first on PATH).
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`simroot-pep needs Node 24 (this is Node ${process.versions.node}): run it as \`npx simroot-pep\` in the repository.`);
  process.exit(2);
}
const { main } = await import("../src/daemon/main.ts");
process.exitCode = await main(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr });
