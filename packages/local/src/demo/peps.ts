/** The demo's enforcement points: one `simroot-pep` daemon per site, as separate processes. */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";

export interface DemoPep {
  readonly site: string;
  readonly adminPort: number;
  stop(): void;
}

const bin = fileURLToPath(new URL("../../../pep/bin/simroot-pep.js", import.meta.url));

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

/** Waits until the PEP reports healthy (its first verified snapshot); says so and goes on after `deadline`. */
async function healthy(site: string, port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  console.warn(`the PEP of ${site} is not healthy yet (it keeps syncing; see http://127.0.0.1:${port}/healthz)`);
}

export async function startPeps(options: {
  url: string;
  apiKey: string;
  keyFile: string;
  tenantId: string;
  sites: readonly string[];
  dataDir: string;
}): Promise<DemoPep[]> {
  const peps = await Promise.all(
    options.sites.map(async (site) => {
      const [port, adminPort] = [await freePort(), await freePort()];
      const child = spawn(
        process.execPath,
        [
          bin,
          "--url",
          options.url,
          "--key",
          options.apiKey,
          "--public-key",
          options.keyFile,
          "--tenant",
          options.tenantId,
          "--selector",
          `site=${site}`,
          "--state",
          resolve(options.dataDir, `pep-${site}.json`),
          "--port",
          String(port),
          "--admin-port",
          String(adminPort),
          "--flow-interval",
          "5",
          "--pep-id",
          `pep-${site}`,
        ],
        { stdio: ["ignore", "ignore", "inherit"] },
      );
      return { site, adminPort, stop: () => child.kill("SIGTERM") };
    }),
  );
  await Promise.all(peps.map((pep) => healthy(pep.site, pep.adminPort, Date.now() + 60_000)));
  return peps;
}
